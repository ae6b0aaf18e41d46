// Package call describes one RPC as the rest of the sdk sees it: which
// interface, group, version and method it targets, the attachments it
// carries, and the status code it ended with.
//
// The types here are deliberately protocol-neutral. The Triple transport
// fills an [Info] from its request headers; routers, balancers, filters and
// cluster strategies read it. Nothing in this package allocates on the
// read path.
package call
