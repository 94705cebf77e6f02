module github.com/quickmatch-dev/quickmatch/load

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.2.0
	github.com/gorilla/websocket v1.5.3
	github.com/nats-io/nats.go v1.55.0
	github.com/quickmatch-dev/quickmatch/pkg/events v0.0.0
	github.com/quickmatch-dev/quickmatch/pkg/jointoken v0.0.0
	github.com/quickmatch-dev/quickmatch/pkg/servicekit v0.0.0
)

require (
	github.com/MicahParks/jwkset v0.11.4 // indirect
	github.com/MicahParks/keyfunc/v3 v3.9.2 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/quickmatch-dev/quickmatch/pkg/events => ../pkg/events
	github.com/quickmatch-dev/quickmatch/pkg/jointoken => ../pkg/jointoken
	github.com/quickmatch-dev/quickmatch/pkg/servicekit => ../pkg/servicekit
	github.com/quickmatch-dev/quickmatch/pkg/testkit => ../pkg/testkit
)
