package testnet

import "runtime"

// HeapInUse is the live heap after a collection, for tests that bound what
// a load makes a process hold.
func HeapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
