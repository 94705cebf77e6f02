module github.com/quickmatch-dev/quickmatch/pkg/agones

go 1.26.0
