module github.com/shoalmesh/shoal/localmesh

go 1.26.0
