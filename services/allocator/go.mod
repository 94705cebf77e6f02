module github.com/quickmatch-dev/quickmatch/services/allocator

go 1.26.0
