package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodePingRequest(t *testing.T) {
	tests := []struct {
		in, peer string // peer "" = must fail
	}{
		{`{"peer":"db"}`, "db"},
		{" \n{\"peer\" : \"12D3KooWabc\"}\n ", "12D3KooWabc"},
		{`{"PEER":"db"}`, "db"}, // encoding/json matches names case-insensitively
		{`{"peer":"db"}x`, ""},
		{`{"peer":"db","x":1}`, ""},
		{`{"peer":""}`, ""},
		{`{}`, ""},
		{``, ""},
		{`"db"`, ""},
		{`{"peer":"` + strings.Repeat("x", maxPeerLen+1) + `"}`, ""},
		{`{"peer":"` + strings.Repeat("x", maxPeerLen) + `"}`, strings.Repeat("x", maxPeerLen)},
		{"{\"peer\":\"a\xffb\"}", ""},
		{`{"peer":"a\tb"}`, ""},
	}
	for _, tt := range tests {
		req, err := decodePingRequest(strings.NewReader(tt.in))
		if tt.peer == "" {
			var re *requestError
			if !errors.As(err, &re) {
				t.Errorf("decode(%.40q) = %+v, %v; want a requestError", tt.in, req, err)
			}
			continue
		}
		if err != nil || req.Peer != tt.peer {
			t.Errorf("decode(%.40q) = %+v, %v; want peer %.20q", tt.in, req, err, tt.peer)
		}
	}
}

// FuzzPingRequest checks that the ping request decoder never panics, fails
// only with a requestError, and that whatever it accepts is a valid peer that
// re-encodes to a body it accepts again with the same result.
func FuzzPingRequest(f *testing.F) {
	f.Add([]byte(`{"peer":"db"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodePingRequest(bytes.NewReader(body))
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a requestError", err)
			}
			if req != (pingRequest{}) {
				t.Fatalf("error %v with a non-zero request %+v", err, req)
			}
			return
		}
		if req.Peer == "" || len(req.Peer) > maxPeerLen || strings.ContainsFunc(req.Peer, isControl) {
			t.Fatalf("accepted invalid peer %q", req.Peer)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, err := decodePingRequest(bytes.NewReader(again))
		if err != nil || req2 != req {
			t.Fatalf("re-encoded %s decodes to %+v, %v; want %+v", again, req2, err, req)
		}
	})
}
