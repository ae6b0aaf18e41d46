package triple

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// What the server accepts from an HTTP/2 client, as RFC 9113 words it:
// stream states (5.1), self-dependent priorities (5.3.1), and well-formed
// requests (8.1.1, 8.2, 8.3). A malformed request is a stream error
// (RST_STREAM PROTOCOL_ERROR); a frame on a stream the client never
// opened is a connection error (GOAWAY PROTOCOL_ERROR). Frames that may
// have crossed the server's own RST_STREAM on the wire are dropped (5.1,
// "closed"). A well-formed call pays one pass over its header fields
// (about 100 ns, BenchmarkCheckRequest) and a few comparisons per frame.

// Why a request header block is malformed. Errors, not strings, so that
// rejecting one allocates nothing.
var (
	errPseudoAfterRegular = errors.New("a pseudo-header field after a regular field")
	errUnknownPseudo      = errors.New("a pseudo-header field that is not a request's (:method, :scheme, :path, :authority)")
	errDuplicatePseudo    = errors.New("a duplicated pseudo-header field")
	errMissingPseudo      = errors.New(":method, :scheme and :path are required (CONNECT: :authority alone)")
	errEmptyPath          = errors.New("an empty :path")
	errFieldName          = errors.New("a field name with upper case, a colon, white space or a control character")
	errFieldValue         = errors.New("a field value with NUL, CR or LF")
	errConnectionHeader   = errors.New("a connection-specific field (connection, keep-alive, proxy-connection, transfer-encoding, upgrade)")
	errTE                 = errors.New(`a te field other than "trailers"`)
	errContentLength      = errors.New("an invalid or repeated content-length")
	errPseudoInTrailers   = errors.New("a pseudo-header field in trailers")
)

// Request pseudo-header fields, as bits.
const (
	pseudoMethod = 1 << iota
	pseudoScheme
	pseudoPath
	pseudoAuthority
)

// badNameByte marks the bytes a field name must not hold (RFC 9113
// 8.2.1): controls, space, upper case, DEL and above, and the colon
// (pseudo-header fields are checked apart).
var badNameByte = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c <= ' ' || ('A' <= c && c <= 'Z') || c >= 0x7f || c == ':'
	}
	return t
}()

func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if badNameByte[s[i]] {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds no NUL, CR or LF. Leading and
// trailing white space, which RFC 9113 8.2.1 also forbids, is let through
// as net/http and grpc-go let it through: grpc-go clients send such
// metadata values.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= '\r' && (c == 0 || c == '\n' || c == '\r') {
			return false
		}
	}
	return true
}

// checkRegularField checks a field that is not a pseudo-header field, in
// a request or its trailers. It returns the content-length it declares,
// or cl unchanged.
func checkRegularField(f *hpack.HeaderField, cl int64) (int64, error) {
	if !validFieldName(f.Name) {
		return cl, errFieldName
	}
	if !validFieldValue(f.Value) {
		return cl, errFieldValue
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return cl, errConnectionHeader
	case "te":
		if f.Value != "trailers" {
			return cl, errTE
		}
	case "content-length":
		n, err := strconv.ParseUint(f.Value, 10, 63)
		if err != nil || cl >= 0 {
			return cl, errContentLength
		}
		return int64(n), nil
	}
	return cl, nil
}

// checkRequest checks a request's header block. It returns the
// content-length the request declares, -1 if none.
func checkRequest(fields []hpack.HeaderField) (contentLength int64, err error) {
	cl := int64(-1)
	var seen int
	var method string
	regular := false
	for i := range fields {
		f := &fields[i]
		if len(f.Name) == 0 || f.Name[0] != ':' {
			regular = true
			if cl, err = checkRegularField(f, cl); err != nil {
				return cl, err
			}
			continue
		}
		if regular {
			return cl, errPseudoAfterRegular
		}
		var bit int
		switch f.Name {
		case ":method":
			bit, method = pseudoMethod, f.Value
		case ":scheme":
			bit = pseudoScheme
		case ":path":
			bit = pseudoPath
			if f.Value == "" {
				return cl, errEmptyPath
			}
		case ":authority":
			bit = pseudoAuthority
		default:
			return cl, errUnknownPseudo
		}
		if seen&bit != 0 {
			return cl, errDuplicatePseudo
		}
		if !validFieldValue(f.Value) {
			return cl, errFieldValue
		}
		seen |= bit
	}
	want := pseudoMethod | pseudoScheme | pseudoPath
	if method == "CONNECT" {
		// RFC 9113 8.5: :authority, and neither :scheme nor :path.
		if seen != pseudoMethod|pseudoAuthority {
			return cl, errMissingPseudo
		}
	} else if seen&want != want {
		return cl, errMissingPseudo
	}
	return cl, nil
}

// checkTrailers checks the header block that ends a request.
func checkTrailers(fields []hpack.HeaderField) error {
	cl := int64(-1)
	for i := range fields {
		f := &fields[i]
		if len(f.Name) > 0 && f.Name[0] == ':' {
			return errPseudoInTrailers
		}
		var err error
		if cl, err = checkRegularField(f, cl); err != nil {
			return err
		}
	}
	return nil
}

// malformed is the stream error for a malformed request on stream id.
func malformed(id uint32, why error) error {
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: fmt.Errorf("triple: malformed request: %w", why)}
}

// streamClosed is the stream error for a frame that came after the
// client ended its side of stream id (RFC 9113 5.1, 6.1).
func streamClosed(id uint32, what string) error {
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed, Cause: fmt.Errorf("triple: %s after the client ended the stream", what)}
}

// errIdleStream: the client sent a frame other than HEADERS or PRIORITY
// on a stream it never opened.
var errIdleStream = fmt.Errorf("triple: a frame on a stream the client has not opened: %w", http2.ConnectionError(http2.ErrCodeProtocol))

// maxHeldBody bounds the body of a request that is not gRPC (JSON, the
// triple flavour: unary calls) held before its handler starts. Such a
// request reaches its handler once it is complete, as a unary gRPC call
// does, so that its DATA is checked against its content-length and its
// stream state before the handler answers: a handler that answered at
// the HEADERS (an unsupported content type) ended the stream with
// RST_STREAM NO_ERROR, after which the rest of the request had to be
// dropped unchecked (RFC 9113 5.1). A larger body starts the handler
// past this many bytes (or at once, when its content-length says so),
// and the handler reads the rest as it comes.
const maxHeldBody = 64 << 10

// initBody sets up the count of a request's DATA: bodyLeft is what it
// still owes its content-length (hasLen), or, when it declared none, what
// is left of maxHeldBody. 4 bytes in the stream's padding: a content-length
// past 2 GiB is not checked (gRPC requests carry none; the server's message
// limit is far lower).
func (ss *h2ServerStream) initBody(contentLength int64) {
	if contentLength >= 0 && contentLength <= math.MaxInt32 {
		ss.hasLen, ss.bodyLeft = true, int32(contentLength)
		return
	}
	ss.bodyLeft = maxHeldBody
}

// countBody counts n more DATA payload bytes (at most a frame, 16 KiB);
// end: the request ends with them.
func (ss *h2ServerStream) countBody(id uint32, n int, end bool) error {
	if !ss.hasLen {
		if ss.bodyLeft >= 0 {
			ss.bodyLeft -= int32(n)
		}
		return nil
	}
	ss.bodyLeft -= int32(n)
	switch {
	case ss.bodyLeft < 0:
		return malformed(id, errors.New("DATA past the content-length"))
	case end && ss.bodyLeft != 0:
		return malformed(id, fmt.Errorf("the request ended %d bytes short of its content-length", ss.bodyLeft))
	}
	return nil
}

// heldPast reports whether a request that declared no content-length
// sent more than maxHeldBody.
func (ss *h2ServerStream) heldPast() bool { return !ss.hasLen && ss.bodyLeft < 0 }

// endedStreams remembers the last streams the client ended (END_STREAM or
// RST_STREAM), after the server forgot them: a DATA frame on one of them
// is the client's error, a DATA frame on another closed stream crossed
// the server's RST_STREAM and is dropped. Bounded: a stream that fell out
// is treated as the second kind. Reader goroutine only.
type endedStreams struct {
	ids  [32]uint32
	next uint8
}

func (e *endedStreams) add(id uint32) {
	e.ids[e.next%uint8(len(e.ids))] = id
	e.next++
}

func (e *endedStreams) has(id uint32) bool {
	if id == 0 {
		return false
	}
	for _, v := range e.ids {
		if v == id {
			return true
		}
	}
	return false
}

// clientEnd notes that the client ended ss (END_STREAM or RST_STREAM).
func (sc *h2ServerConn) clientEnd(ss *h2ServerStream) {
	ss.ended = true
	sc.clientEnded.add(ss.id)
}

// idleStream reports whether id names a stream the client has not opened:
// above the highest it opened, or even (the server opens none). Reader
// goroutine only, which is the one that writes maxID.
func (sc *h2ServerConn) idleStream(id uint32) bool {
	return id != 0 && (id%2 == 0 || id > sc.maxID)
}

// dataOnClosed answers a DATA frame on a stream the server no longer
// tracks (its flow control is counted already).
func (sc *h2ServerConn) dataOnClosed(id uint32) error {
	switch {
	case sc.idleStream(id):
		return errIdleStream
	case sc.clientEnded.has(id):
		return streamClosed(id, "DATA")
	}
	return nil // it crossed the server's RST_STREAM or REFUSED_STREAM
}

// selfDependent is the stream error for a stream that depends on itself
// (RFC 9113 5.3.1).
func selfDependent(id uint32) error {
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol, Cause: errors.New("triple: a stream that depends on itself")}
}

// onPriority rejects a PRIORITY frame that makes a stream depend on
// itself; the server ignores priorities otherwise.
func onPriority(f *http2.PriorityFrame) error {
	if f.StreamDep == f.StreamID {
		return selfDependent(f.StreamID)
	}
	return nil
}

// requestLine reports whether the first line of a connection that did
// not start with the HTTP/2 preface may be an HTTP/1 request line (it ends
// in HTTP/1.x), so that net/http should answer it. A line that is
// complete and is not one is neither protocol: the connection is closed
// without an answer (RFC 9113 3.4: an invalid preface is a connection
// error, its GOAWAY may be omitted). So is a line cut by the peer or by the
// handshake timeout (the read deadline the caller set), which net/http
// would close without an answer too. A line that does not fit the buffer
// goes to net/http, which answers it.
func requestLine(br *bufio.Reader) bool {
	for n := br.Buffered(); ; n = br.Buffered() {
		b, _ := br.Peek(n)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line := bytes.TrimSuffix(b[:i], []byte("\r"))
			sp := bytes.LastIndexByte(line, ' ')
			return sp > 0 && bytes.HasPrefix(line[sp+1:], []byte("HTTP/1."))
		}
		if n >= br.Size() {
			return true
		}
		if _, err := br.Peek(n + 1); err != nil {
			return false
		}
	}
}

// checkOpen checks the HEADERS that open a stream; it returns the
// content-length the request declares (-1 if none), or the stream error
// that rejects it. A header block cut short at the header list limit is
// not checked: the call fails with RESOURCE_EXHAUSTED.
func (sc *h2ServerConn) checkOpen(f *http2.HeadersFrame) (int64, error) {
	id := f.StreamID
	if f.HasPriority() && f.Priority.StreamDep == id {
		return -1, selfDependent(id)
	}
	if sc.hoverflow {
		return -1, nil
	}
	cl, err := checkRequest(sc.fields)
	if err != nil {
		return -1, malformed(id, err)
	}
	if f.StreamEnded() && cl > 0 {
		return -1, malformed(id, fmt.Errorf("content-length %d, no DATA", cl))
	}
	return cl, nil
}

// onTrailers takes a HEADERS frame on an open stream: the trailers that
// end the request.
func (sc *h2ServerConn) onTrailers(ss *h2ServerStream, f *http2.HeadersFrame) error {
	id := f.StreamID
	switch {
	case ss.ended:
		return headersAfterEnd(id)
	case ss.reset.Load():
		return nil // it crossed the server's RST_STREAM
	case !f.StreamEnded():
		return malformed(id, errors.New("a second HEADERS without END_STREAM"))
	case f.HasPriority() && f.Priority.StreamDep == id:
		return selfDependent(id)
	}
	sc.clientEnd(ss)
	if !sc.hoverflow {
		if err := checkTrailers(sc.fields); err != nil {
			return malformed(id, err)
		}
	}
	if err := ss.countBody(id, 0, true); err != nil {
		return err
	}
	ss.recv.finish()
	sc.maybeStart(ss)
	return nil
}

// headersOnClosed answers HEADERS on a stream id the client used before:
// STREAM_CLOSED after it ended that stream (RFC 9113 5.1), else
// PROTOCOL_ERROR (5.1.1: a new stream's id must be higher than all the
// client opened before).
func (sc *h2ServerConn) headersOnClosed(id uint32) error {
	if id%2 == 1 && sc.clientEnded.has(id) {
		return headersAfterEnd(id)
	}
	return http2.ConnectionError(http2.ErrCodeProtocol)
}

// headersAfterEnd is the error for HEADERS on a stream the client ended
// (END_STREAM or RST_STREAM): a connection error STREAM_CLOSED, whether
// the server still serves the stream (half-closed (remote), where 5.1
// asks for a stream error, which 5.4 lets an endpoint make a connection
// error) or ended it too (closed). One answer, whatever the timing of
// the server's own end of the stream.
func headersAfterEnd(id uint32) error {
	return fmt.Errorf("triple: HEADERS on stream %d after the client ended it: %w", id, http2.ConnectionError(http2.ErrCodeStreamClosed))
}

// checkData checks a DATA frame on a stream the server tracks.
func (sc *h2ServerConn) checkData(ss *h2ServerStream, f *http2.DataFrame) error {
	if ss.ended {
		return streamClosed(f.StreamID, "DATA")
	}
	end := f.StreamEnded()
	if end {
		sc.clientEnd(ss)
	}
	return ss.countBody(f.StreamID, len(f.Data()), end)
}
