package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{{Kind: KindTCP, Service: "postgres"}, {Kind: KindUDP, Service: strings.Repeat("s", MaxServiceLen)},
		{Kind: KindPing, Service: "x"}, {Kind: KindTCP, Service: "db", Pipelined: true}} {
		b, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseRequest(b)
		if err != nil || got != r || n != len(b) {
			t.Fatalf("%+v: got %+v n=%d err=%v", r, got, n, err)
		}
		rd, err := ReadRequest(bytes.NewReader(append(b, "payload"...)))
		if err != nil || rd != r {
			t.Fatalf("ReadRequest: %+v %v", rd, err)
		}
	}
}

func TestRequestRejects(t *testing.T) {
	good, _ := Request{Kind: KindTCP, Service: "svc"}.AppendBinary(nil)
	cases := map[string][]byte{
		"empty":          {},
		"bad version":    append([]byte{2}, good[1:]...),
		"bad kind":       {1, 9, 3, 's', 'v', 'c', 0, 0},
		"empty service":  {1, 1, 0, 0, 0},
		"long service":   append([]byte{1, 1, MaxServiceLen + 1}, make([]byte, MaxServiceLen+3)...),
		"ext too large":  {1, 1, 1, 's', 0xff, 0xff},
		"cut in service": {1, 1, 3, 's'},
		"cut in ext":     {1, 1, 1, 's', 0, 4, 1},
		"cut ext field":  {1, 1, 1, 's', 0, 3, 9, 9, 9},
		"ext field len":  {1, 1, 1, 's', 0, 1, 9},
	}
	for name, b := range cases {
		if _, _, err := ParseRequest(b); err == nil {
			t.Errorf("%s: ParseRequest accepted %x", name, b)
		}
		if _, err := ReadRequest(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: ReadRequest accepted %x", name, b)
		}
	}
	if _, err := (Request{Kind: KindTCP, Service: ""}).AppendBinary(nil); !errors.Is(err, ErrBadHeader) {
		t.Errorf("encoding an empty service name: %v", err)
	}
}

func TestRequestSkipsExtensions(t *testing.T) {
	// An unknown field (type 9, 2 bytes), then pipelined, then an empty unknown one.
	b := []byte{1, 1, 2, 'd', 'b', 0, 8, 9, 2, 7, 7, 1, 0, 200, 0, 'x'}
	r, n, err := ParseRequest(b)
	if err != nil || r.Service != "db" || !r.Pipelined || n != len(b)-1 {
		t.Fatalf("got %+v n=%d err=%v", r, n, err)
	}
	rd := bytes.NewReader(b)
	if _, err := ReadRequest(rd); err != nil || rd.Len() != 1 {
		t.Fatalf("ReadRequest read past the header: %d left, err %v", rd.Len(), err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for s := StatusOK; s <= StatusBadRequest; s++ {
		b, _ := Response{s}.AppendBinary(nil)
		got, n, err := ParseResponse(b)
		if err != nil || got.Status != s || n != len(b) {
			t.Fatalf("%v: %+v %d %v", s, got, n, err)
		}
		if s.String() == "" || strings.HasPrefix(s.String(), "status(") {
			t.Errorf("status %d has no name", s)
		}
	}
	if _, _, err := ParseResponse([]byte{1, 0, 0xff, 0xff}); err == nil {
		t.Error("oversized response extension accepted")
	}
}

func FuzzRequest(f *testing.F) {
	for _, r := range []Request{{Kind: KindTCP, Service: "postgres"}, {Kind: KindPing, Service: "e"},
		{Kind: KindTCP, Service: "db", Pipelined: true}} {
		b, _ := r.AppendBinary(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 1, 2, 'd', 'b', 0, 3, 9, 1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := ParseRequest(b)
		rd, rerr := ReadRequest(bytes.NewReader(b))
		if (err == nil) != (rerr == nil) || (err == nil && rd != r) {
			t.Fatalf("ParseRequest and ReadRequest disagree: %v / %v", err, rerr)
		}
		if err != nil {
			return
		}
		if n > len(b) || n > MaxRequestSize {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		enc, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
		again, m, err := ParseRequest(enc)
		if err != nil || again != r || m != len(enc) {
			t.Fatalf("round trip: %+v -> %+v", r, again)
		}
	})
}

func FuzzResponse(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 2, 0, 1, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := ParseResponse(b)
		if err != nil {
			return
		}
		if n > len(b) || n > MaxResponseSize {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		enc, _ := r.AppendBinary(nil)
		if again, _, err := ParseResponse(enc); err != nil || again != r {
			t.Fatalf("round trip: %+v -> %+v", r, again)
		}
	})
}
