module github.com/quickmatch-dev/quickmatch/services/frontend

go 1.26.0
