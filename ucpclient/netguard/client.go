package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// ClientOptions configures NewClient. Zero values mean the defaults.
type ClientOptions struct {
	// AllowLoopback lets the client connect to loopback addresses (and
	// only those among the special-use ranges), for local development.
	AllowLoopback bool
	// Timeout bounds a whole request, body included, and each of its
	// phases (dial, TLS handshake, response headers); default 5 s.
	Timeout time.Duration
	// MaxResponseHeaderBytes caps the response headers; default 16 KiB.
	MaxResponseHeaderBytes int64
	// MaxIdleConnsPerHost bounds kept-alive connections per host;
	// default 2. Idle connections close after 30 s.
	MaxIdleConnsPerHost int
}

// DefaultTimeout is NewClient's default request timeout.
const DefaultTimeout = 5 * time.Second

// NewClient returns the one client every fetch of a caller-named URL goes
// through. It dials through Control (LoopbackControl with AllowLoopback),
// uses no proxy (a proxy would dial for it and bypass the guard), never
// follows redirects (a 3xx comes back as the response: the callers'
// protocols forbid following them, and a redirect could point the fetch
// somewhere CheckURL never saw), caps response headers and bounds every
// phase of the request. HTTP/2 is attempted as the default transport
// does.
func NewClient(opts *ClientOptions) *http.Client {
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = 16 << 10
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = 2
	}
	control := Control
	if o.AllowLoopback {
		control = LoopbackControl
	}
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second, Control: control}
	return &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true, // a custom DialContext turns HTTP/2 off otherwise
			TLSHandshakeTimeout:    o.Timeout,
			ResponseHeaderTimeout:  o.Timeout,
			MaxIdleConns:           32,
			MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
			IdleConnTimeout:        30 * time.Second,
			MaxResponseHeaderBytes: o.MaxResponseHeaderBytes,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TooLargeError is ReadBody's refusal of a body over its limit.
type TooLargeError struct {
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("netguard: body larger than %d bytes", e.Limit)
}

// ReadBody reads res.Body up to limit bytes and closes it. A body over the
// limit is a *TooLargeError, found from Content-Length before any read or
// from one byte past the limit, so whatever else the server wants to send
// is never read.
func ReadBody(res *http.Response, limit int64) ([]byte, error) {
	defer res.Body.Close()
	if res.ContentLength > limit {
		return nil, &TooLargeError{Limit: limit}
	}
	body, err := readAll(io.LimitReader(res.Body, limit+1), res.ContentLength)
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, &TooLargeError{Limit: limit}
	}
	return body, nil
}

// maxPrealloc bounds what a Content-Length makes readAll allocate before
// the bytes arrive: a server announcing the limit and sending little
// costs no more than that.
const maxPrealloc = 64 << 10

// readAll is io.ReadAll with the buffer sized from a Content-Length up to
// maxPrealloc (one allocation instead of io.ReadAll's growth from 512
// bytes). The length is only a hint: r is read to EOF whatever it said.
func readAll(r io.Reader, contentLength int64) ([]byte, error) {
	size := int64(512)
	if contentLength > 0 {
		size = min(contentLength+1, maxPrealloc) // +1: room for the read that returns EOF
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append grow it
		}
	}
}

// IsTimeout reports whether err is a timeout of a fetch made with a
// NewClient client (its own deadline or its context's).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
