module github.com/quickmatch-dev/quickmatch/services/game

go 1.26.0
