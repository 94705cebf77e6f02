module github.com/quickmatch-dev/quickmatch/services/matcher

go 1.26.0
