package proxy

import (
	"sync"
	"sync/atomic"
)

// Splice copies through pooled buffers. Each direction of a connection
// holds one while it waits in Read or Write, so buffers are most of what an
// open connection costs. A few busy connections get BufferSize buffers,
// which move a bulk transfer with fewer system calls; past MaxBigBuffers at
// once the rest copy through SmallBufferSize ones, so that memory under
// hundreds of busy connections stays bounded (500 connections each moving
// 1 MiB both ways grow a daemon by about 45 MiB instead of 65).
const (
	BufferSize      = 32 << 10
	SmallBufferSize = 16 << 10
	MaxBigBuffers   = 128 // 4 MiB of big buffers
)

var (
	bigPool   = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}
	smallPool = sync.Pool{New: func() any { b := make([]byte, SmallBufferSize); return &b }}
	bigInUse  atomic.Int64
)

// getBuffer returns a copy buffer and the function that gives it back.
func getBuffer() ([]byte, func()) {
	if bigInUse.Add(1) <= MaxBigBuffers {
		bp := bigPool.Get().(*[]byte)
		return *bp, func() { bigPool.Put(bp); bigInUse.Add(-1) }
	}
	bigInUse.Add(-1)
	bp := smallPool.Get().(*[]byte)
	return *bp, func() { smallPool.Put(bp) }
}
