package triple

import (
	"bytes"
	"compress/gzip"
	"io"
	"sync"
)

const (
	encodingIdentity = "identity"
	encodingGzip     = "gzip"
)

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	gzipReaders sync.Pool
)

// gzipCompress appends the gzip of data to dst.
func gzipCompress(dst *bytes.Buffer, data []byte) error {
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(dst)
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// gzipDecompress inflates data, failing with RESOURCE_EXHAUSTED past limit
// bytes so that a small bomb cannot take the process's memory.
func gzipDecompress(data []byte, limit int) ([]byte, error) {
	var r *gzip.Reader
	if v := gzipReaders.Get(); v != nil {
		r = v.(*gzip.Reader)
		if err := r.Reset(bytes.NewReader(data)); err != nil {
			return nil, Errorf(CodeInternal, "bad gzip message: %v", err)
		}
	} else {
		var err error
		if r, err = gzip.NewReader(bytes.NewReader(data)); err != nil {
			return nil, Errorf(CodeInternal, "bad gzip message: %v", err)
		}
	}
	defer gzipReaders.Put(r)
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, Errorf(CodeInternal, "bad gzip message: %v", err)
	}
	if len(out) > limit {
		return nil, Errorf(CodeResourceExhausted, "decompressed message larger than the limit of %d bytes", limit)
	}
	return out, nil
}
