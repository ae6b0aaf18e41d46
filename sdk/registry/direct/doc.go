// Package direct is a discovery over a fixed list of provider URLs, for
// development, tests and calls to a known address with no registry at all:
//
//	tri://10.0.0.7:50051
//	tri://10.0.0.8:50051/greet.GreetService?version=1.0.0&group=blue&weight=3&zone=a
//
// The path, when present, limits the URL to one interface; group and
// version, when present, limit it to consumers asking for them; weight sets
// its share; every other parameter becomes an endpoint label. The list never
// changes, so watchers deliver one snapshot and then wait for Close.
// Providers cannot register here: Register fails with errors.ErrUnsupported.
package direct
