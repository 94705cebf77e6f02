module github.com/quickmatch-dev/quickmatch/load

go 1.26.0

require github.com/gorilla/websocket v1.5.3

require github.com/quickmatch-dev/quickmatch/pkg/jointoken v0.0.0

require github.com/HdrHistogram/hdrhistogram-go v1.2.0

replace github.com/quickmatch-dev/quickmatch/pkg/jointoken => ../pkg/jointoken
