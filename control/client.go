package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
)

// maxResponseBytes bounds a response body read by the Client.
const maxResponseBytes = 16 << 20

// Client talks to a p2pd over its control socket. It implements Backend, so
// every method has the Backend's meaning. It keeps no connection between
// calls and is safe for concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a Client for the control socket at socketPath. It does
// not connect until a method is called.
func NewClient(socketPath string) *Client {
	c := &Client{socket: socketPath}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext:            c.dial,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxRequestBytes,
	}}
	return c
}

// SocketPath returns the path the Client connects to.
func (c *Client) SocketPath() string { return c.socket }

// NotRunningError is returned when no daemon listens on the control socket.
// It matches ErrNotRunning with errors.Is.
type NotRunningError struct {
	Socket string
	Err    error // the dial error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("p2pctl: no p2pd is running at %s (is the daemon started? see --socket)", e.Socket)
}

// Unwrap returns ErrNotRunning and the dial error.
func (e *NotRunningError) Unwrap() []error { return []error{ErrNotRunning, e.Err} }

// ServerError is an error answer from the daemon. Its message is the
// daemon's; a 404 matches ErrNotFound with errors.Is.
type ServerError struct {
	StatusCode int
	Message    string
}

func (e *ServerError) Error() string { return e.Message }

// Is reports whether target is ErrNotFound and the daemon answered 404.
func (e *ServerError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	switch {
	case err == nil:
		return conn, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTDIR):
		return nil, &NotRunningError{Socket: c.socket, Err: err}
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("control: permission denied on %s (run p2pctl as the user that runs p2pd, or as root): %w", c.socket, err)
	default:
		return nil, fmt.Errorf("control: connecting to %s: %w", c.socket, err)
	}
}

// do sends one request and decodes a 200 answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control: encoding %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://p2pd"+path, body)
	if err != nil {
		return fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var nre *NotRunningError
		if errors.As(err, &nre) {
			return nre
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("control: %s %s on %s: %w", method, path, c.socket, ctxErr)
		}
		var ue *url.Error
		if errors.As(err, &ue) { // strip net/http's `Get "http://p2pd/..."` wrapper
			err = ue.Err
		}
		return fmt.Errorf("control: %s %s on %s: %w", method, path, c.socket, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if err := dec.Decode(&e); err != nil || e.Error == "" {
			e.Error = fmt.Sprintf("control: daemon answered %s to %s %s", resp.Status, method, path)
		}
		return &ServerError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("control: decoding answer to %s %s: %w", method, path, err)
	}
	return nil
}
