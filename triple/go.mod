module github.com/shoalmesh/shoal/triple

go 1.26.0
