module github.com/shoalmesh/shoal/cli

go 1.26.0
