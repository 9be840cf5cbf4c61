package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// TestEarlyStream writes payload before the answer arrives: an accepted
// stream carries it; a refused one reports the refusal on the first Read
// and the refusing side never reads the payload.
func TestEarlyStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, sb, _, _ := sessionPair(t, ctx)

	var refusedRead int64 = -1
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2; i++ {
			st, err := sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			req, err := st.ReadRequest(time.Second)
			if err != nil {
				st.Abort()
				continue
			}
			if req.Service != "echo" {
				st.Respond(StatusAccessDenied)
				refusedRead = 0 // Respond ends the stream: nothing more is read
				continue
			}
			st.Respond(StatusOK)
			io.Copy(st, st)
			st.Close()
		}
	}()

	msg := bytes.Repeat([]byte("early"), 1000)
	st, err := sa.OpenStreamEarly(ctx, Request{Kind: KindTCP, Service: "echo"}, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("early echo: %d bytes, %v", len(got), err)
	}
	st.Close()

	failed := make(chan error, 1)
	st, err = sa.OpenStreamEarly(ctx, Request{Kind: KindTCP, Service: "secret"}, time.Second, func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	st.Write(msg)
	n, err := st.Read(make([]byte, 10))
	var se *StatusError
	if n != 0 || !errors.As(err, &se) || se.Status != StatusAccessDenied {
		t.Fatalf("refused early stream: read %d bytes, err %v; want 0 and access denied", n, err)
	}
	if _, err2 := st.Read(make([]byte, 10)); !errors.As(err2, &se) {
		t.Fatalf("second read after a refusal: %v", err2)
	}
	wg.Wait()
	if refusedRead != 0 {
		t.Fatal("the refused stream was not answered")
	}
	select {
	case err := <-failed:
		t.Fatalf("onFail called for a refusal (it is for missing answers): %v", err)
	default:
	}
	if sa.Stats().Streams != 0 {
		t.Fatalf("%d streams still counted", sa.Stats().Streams)
	}
}
