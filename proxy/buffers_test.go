package proxy

import "testing"

// TestBufferSizes checks the split between big and small copy buffers: the
// first MaxBigBuffers at once are big, the next ones small, and a big one
// given back is handed out again.
func TestBufferSizes(t *testing.T) {
	if n := bigInUse.Load(); n != 0 {
		t.Fatalf("%d big buffers in use before the test", n)
	}
	var puts []func()
	defer func() {
		for _, put := range puts {
			put()
		}
	}()
	for i := range MaxBigBuffers {
		b, put := getBuffer()
		puts = append(puts, put)
		if len(b) != BufferSize {
			t.Fatalf("buffer %d: %d bytes, want %d", i, len(b), BufferSize)
		}
	}
	b, put := getBuffer()
	if len(b) != SmallBufferSize {
		t.Fatalf("buffer past the limit: %d bytes, want %d", len(b), SmallBufferSize)
	}
	put()
	puts[0]()
	puts = puts[1:]
	b, put = getBuffer()
	puts = append(puts, put)
	if len(b) != BufferSize {
		t.Fatalf("after a big buffer came back: %d bytes, want %d", len(b), BufferSize)
	}
	if n := bigInUse.Load(); n != MaxBigBuffers {
		t.Fatalf("%d big buffers counted, want %d", n, MaxBigBuffers)
	}
}
