module github.com/shoalmesh/shoal/sdk

go 1.26.0

replace github.com/shoalmesh/shoal/triple => ../triple

require (
	github.com/fsnotify/fsnotify v1.9.0
	go.uber.org/goleak v1.3.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/kr/text v0.2.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
