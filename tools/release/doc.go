// Command shoalrelease holds the Go parts of Shoal's release tooling, driven
// by scripts/release-check.sh and scripts/release.sh:
//
//	shoalrelease check -root DIR          fail when a released module keeps a replace
//	                                      or requires a Shoal module at a version
//	                                      versions.yaml does not release
//	shoalrelease pack -root DIR -out DIR  write every released module, at its
//	                                      versions.yaml version (and every earlier
//	                                      release tag), into a file-system module proxy
//	shoalrelease bump -root DIR -version V [-sets a,b]
//	                                      set versions.yaml and every Shoal require
//	                                      of the released modules to V
//	shoalrelease previous -root DIR       print "set version previous-tag" per set
//	shoalrelease sets -root DIR           print "dir version" per release set, in
//	                                      dependency order
//
// It lives in its own module outside go.work (like tools/lint), so
// golang.org/x/mod never reaches the libraries' dependency graph.
package main
