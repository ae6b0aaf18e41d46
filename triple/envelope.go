package triple

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

const (
	envelopeHeaderLen = 5
	flagCompressed    = 1
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 1<<20 { // do not keep large buffers alive
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// marshalEnvelope returns a pooled buffer holding msg framed as one gRPC
// message: a flag byte, a 4-byte big-endian length, the payload.
func marshalEnvelope(codec Codec, msg any, compress bool, maxSend int) (*bytes.Buffer, error) {
	buf := getBuf()
	b := buf.Bytes()[:0]
	b = append(b, 0, 0, 0, 0, 0)
	b, err := codec.MarshalAppend(b, msg)
	if err != nil {
		putBuf(buf)
		return nil, Errorf(CodeInternal, "marshal %T: %v", msg, err)
	}
	payload := len(b) - envelopeHeaderLen
	if compress && payload > 0 {
		zbuf := getBuf()
		zbuf.Write([]byte{flagCompressed, 0, 0, 0, 0})
		if err := gzipCompress(zbuf, b[envelopeHeaderLen:]); err != nil {
			putBuf(zbuf)
			putBuf(buf)
			return nil, Errorf(CodeInternal, "gzip: %v", err)
		}
		putBuf(buf)
		buf, b = zbuf, zbuf.Bytes()
		payload = len(b) - envelopeHeaderLen
	} else {
		*buf = *bytes.NewBuffer(b)
	}
	if payload > maxSend {
		putBuf(buf)
		return nil, Errorf(CodeResourceExhausted, "message of %d bytes exceeds the send limit of %d bytes", payload, maxSend)
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(payload))
	return buf, nil
}

// envelopeReader reads gRPC-framed messages from a body.
type envelopeReader struct {
	r          io.Reader
	maxRecv    int
	compressed string // the grpc-encoding of the peer, "" for identity
}

// next reads one message payload (decompressed) into a pooled buffer.
// io.EOF means the stream ended cleanly between messages.
func (er *envelopeReader) next() (*bytes.Buffer, error) {
	var hdr [envelopeHeaderLen]byte
	if _, err := io.ReadFull(er.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, Errorf(CodeInternal, "truncated message header: the stream ended inside the 5-byte prefix")
		}
		return nil, err
	}
	flags := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	if flags&^flagCompressed != 0 {
		return nil, Errorf(CodeInternal, "malformed message prefix: unknown flags 0x%02x", flags)
	}
	if uint64(n) > uint64(er.maxRecv) {
		return nil, Errorf(CodeResourceExhausted, "message of %d bytes exceeds the receive limit of %d bytes", n, er.maxRecv)
	}
	buf := getBuf()
	buf.Grow(int(n))
	if _, err := io.CopyN(buf, er.r, int64(n)); err != nil {
		putBuf(buf)
		if errors.Is(err, io.EOF) {
			return nil, Errorf(CodeInternal, "truncated message: the prefix announced %d bytes, the stream ended after %d", n, buf.Len())
		}
		return nil, err
	}
	if flags&flagCompressed != 0 {
		if er.compressed == "" || er.compressed == encodingIdentity {
			putBuf(buf)
			return nil, Errorf(CodeInternal, "compressed message without grpc-encoding")
		}
		out, err := gzipDecompress(buf.Bytes(), er.maxRecv)
		putBuf(buf)
		if err != nil {
			return nil, err
		}
		return bytes.NewBuffer(out), nil
	}
	return buf, nil
}
