module github.com/quickmatch-dev/quickmatch/dev

go 1.26.0
