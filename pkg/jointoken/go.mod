module github.com/quickmatch-dev/quickmatch/pkg/jointoken

go 1.26.0
