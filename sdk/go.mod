module github.com/shoalmesh/shoal/sdk

go 1.26.0

replace github.com/shoalmesh/shoal/triple => ../triple

require go.uber.org/goleak v1.3.0
