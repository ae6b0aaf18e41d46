// Package httpget is the module tests' one-line HTTP GET.
package httpget
