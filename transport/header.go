package transport

import (
	"encoding/binary"
	"fmt"
	"io"
)

// HeaderVersion is the only stream header version this package speaks.
const HeaderVersion = 1

// Sizes of the stream headers, built from their parts (see the package doc).
const (
	versionLen       = 1
	kindLen          = 1
	svcLenLen        = 1
	statusLen        = 1
	extLenLen        = 2
	MaxServiceLen    = 64
	MaxExtLen        = 256
	requestFixedLen  = versionLen + kindLen + svcLenLen
	MinRequestSize   = requestFixedLen + 1 + extLenLen
	MaxRequestSize   = requestFixedLen + MaxServiceLen + extLenLen + MaxExtLen
	ResponseFixedLen = versionLen + statusLen + extLenLen
	MaxResponseSize  = ResponseFixedLen + MaxExtLen
)

// Kind says what a stream carries.
type Kind uint8

// Stream kinds.
const (
	KindTCP  Kind = 1 // a TCP connection to a service
	KindUDP  Kind = 2 // a UDP flow to a service
	KindPing Kind = 3 // an echo, for measurements
)

func (k Kind) valid() bool { return k >= KindTCP && k <= KindPing }

func (k Kind) String() string {
	switch k {
	case KindTCP:
		return "tcp"
	case KindUDP:
		return "udp"
	case KindPing:
		return "ping"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Request extension fields: a 1-byte type, a 1-byte length and that many
// bytes of value. Unknown types are skipped.
const (
	// extPipelined (no value) says that the opener writes payload without
	// waiting for the answer and does not need the answer until payload
	// comes back, so an OK may travel with the first payload instead of in
	// a packet of its own.
	extPipelined = 1
	// extFlowID (4 bytes, big-endian, nonzero) is the flow id that the
	// opener of a udp stream chose for the flow's QUIC datagrams (flow.go).
	// A udp request without it carries every datagram on the stream.
	extFlowID   = 2
	flowIDLen   = 4
	extFieldLen = 2 // type and length
)

// Request opens a stream.
type Request struct {
	Kind    Kind
	Service string
	// Pipelined is set by OpenStreamEarly; see extPipelined.
	Pipelined bool
	// FlowID is a udp flow's datagram id (see extFlowID); 0 for none.
	FlowID uint32
}

// AppendBinary appends the encoded request to b.
func (r Request) AppendBinary(b []byte) ([]byte, error) {
	if !r.Kind.valid() {
		return b, fmt.Errorf("%w: kind %d", ErrBadHeader, r.Kind)
	}
	if len(r.Service) == 0 || len(r.Service) > MaxServiceLen {
		return b, fmt.Errorf("%w: service name of %d bytes, want 1..%d", ErrBadHeader, len(r.Service), MaxServiceLen)
	}
	b = append(b, HeaderVersion, byte(r.Kind), byte(len(r.Service)))
	b = append(b, r.Service...)
	if r.FlowID > MaxFlowID {
		return b, fmt.Errorf("%w: flow id %d over %d", ErrBadHeader, r.FlowID, MaxFlowID)
	}
	ext := 0
	if r.Pipelined {
		ext += extFieldLen
	}
	if r.FlowID != 0 {
		ext += extFieldLen + flowIDLen
	}
	b = binary.BigEndian.AppendUint16(b, uint16(ext))
	if r.Pipelined {
		b = append(b, extPipelined, 0)
	}
	if r.FlowID != 0 {
		b = append(b, extFlowID, flowIDLen)
		b = binary.BigEndian.AppendUint32(b, r.FlowID)
	}
	return b, nil
}

// parseRequestExt reads the request's extension fields into r.
func parseRequestExt(r *Request, ext []byte) error {
	for len(ext) > 0 {
		if len(ext) < extFieldLen || len(ext) < extFieldLen+int(ext[1]) {
			return fmt.Errorf("%w: truncated extension field", ErrBadHeader)
		}
		val := ext[extFieldLen : extFieldLen+int(ext[1])]
		switch ext[0] {
		case extPipelined:
			r.Pipelined = true
		case extFlowID:
			if len(val) != flowIDLen {
				return fmt.Errorf("%w: flow id of %d bytes, want %d", ErrBadHeader, len(val), flowIDLen)
			}
			id := binary.BigEndian.Uint32(val)
			if id == 0 || id > MaxFlowID {
				return fmt.Errorf("%w: flow id %d, want 1..%d", ErrBadHeader, id, MaxFlowID)
			}
			r.FlowID = id
		}
		ext = ext[extFieldLen+int(ext[1]):]
	}
	return nil
}

// ParseRequest decodes a request from the start of b and returns the bytes it used.
func ParseRequest(b []byte) (Request, int, error) {
	if len(b) < requestFixedLen {
		return Request{}, 0, ErrShortHeader
	}
	if b[0] != HeaderVersion {
		return Request{}, 0, fmt.Errorf("%w: version %d", ErrBadHeader, b[0])
	}
	k := Kind(b[1])
	if !k.valid() {
		return Request{}, 0, fmt.Errorf("%w: kind %d", ErrBadHeader, b[1])
	}
	n := int(b[2])
	if n == 0 || n > MaxServiceLen {
		return Request{}, 0, fmt.Errorf("%w: service name of %d bytes", ErrBadHeader, n)
	}
	off := requestFixedLen
	if len(b) < off+n+extLenLen {
		return Request{}, 0, ErrShortHeader
	}
	svc := string(b[off : off+n])
	off += n
	ext := int(binary.BigEndian.Uint16(b[off:]))
	off += extLenLen
	if ext > MaxExtLen {
		return Request{}, 0, fmt.Errorf("%w: %d extension bytes, limit %d", ErrBadHeader, ext, MaxExtLen)
	}
	if len(b) < off+ext {
		return Request{}, 0, ErrShortHeader
	}
	r := Request{Kind: k, Service: svc}
	if err := parseRequestExt(&r, b[off:off+ext]); err != nil {
		return Request{}, 0, err
	}
	return r, off + ext, nil
}

// ReadRequest reads one request header from r without reading past it.
func ReadRequest(r io.Reader) (Request, error) {
	var buf [MaxRequestSize]byte
	if _, err := io.ReadFull(r, buf[:requestFixedLen]); err != nil {
		return Request{}, shortRead(err)
	}
	n := int(buf[2])
	if buf[0] != HeaderVersion || n == 0 || n > MaxServiceLen {
		_, _, err := ParseRequest(buf[:requestFixedLen])
		return Request{}, err
	}
	end := requestFixedLen + n + extLenLen
	if _, err := io.ReadFull(r, buf[requestFixedLen:end]); err != nil {
		return Request{}, shortRead(err)
	}
	ext := int(binary.BigEndian.Uint16(buf[end-extLenLen:]))
	if ext > MaxExtLen {
		return Request{}, fmt.Errorf("%w: %d extension bytes, limit %d", ErrBadHeader, ext, MaxExtLen)
	}
	if _, err := io.ReadFull(r, buf[end:end+ext]); err != nil {
		return Request{}, shortRead(err)
	}
	req, _, err := ParseRequest(buf[:end+ext])
	return req, err
}

// Response answers a request.
type Response struct {
	Status Status
}

// AppendBinary appends the encoded response to b.
func (r Response) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, HeaderVersion, byte(r.Status))
	return binary.BigEndian.AppendUint16(b, 0), nil
}

// ParseResponse decodes a response from the start of b.
func ParseResponse(b []byte) (Response, int, error) {
	if len(b) < ResponseFixedLen {
		return Response{}, 0, ErrShortHeader
	}
	if b[0] != HeaderVersion {
		return Response{}, 0, fmt.Errorf("%w: version %d", ErrBadHeader, b[0])
	}
	ext := int(binary.BigEndian.Uint16(b[2:]))
	if ext > MaxExtLen {
		return Response{}, 0, fmt.Errorf("%w: %d extension bytes, limit %d", ErrBadHeader, ext, MaxExtLen)
	}
	if len(b) < ResponseFixedLen+ext {
		return Response{}, 0, ErrShortHeader
	}
	return Response{Status: Status(b[1])}, ResponseFixedLen + ext, nil
}

// ReadResponse reads one response header from r without reading past it.
func ReadResponse(r io.Reader) (Response, error) {
	var buf [MaxResponseSize]byte
	if _, err := io.ReadFull(r, buf[:ResponseFixedLen]); err != nil {
		return Response{}, shortRead(err)
	}
	ext := int(binary.BigEndian.Uint16(buf[2:]))
	if buf[0] != HeaderVersion || ext > MaxExtLen {
		_, _, err := ParseResponse(buf[:ResponseFixedLen])
		return Response{}, err
	}
	if _, err := io.ReadFull(r, buf[ResponseFixedLen:ResponseFixedLen+ext]); err != nil {
		return Response{}, shortRead(err)
	}
	resp, _, err := ParseResponse(buf[:ResponseFixedLen+ext])
	return resp, err
}

func shortRead(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrShortHeader
	}
	return err
}
