package transport

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Control frame layout: type (1) | length (2, BE) | body (length).
const (
	ctlTypeLen   = 1
	ctlLenLen    = 2
	ctlHeaderLen = ctlTypeLen + ctlLenLen
	pingNonceLen = 8
	// going-away: one past the highest stream ID the sender opened on the
	// first lane, then, for each extra lane it opened streams on, the
	// lane's id and the same for that lane.
	goingAwayLen     = 8
	goingAwayLaneLen = laneIDLen + 8
	MaxControlBody   = goingAwayLen + MaxLanes*goingAwayLaneLen
	laneFrameLen     = laneIDLen + 8
)

type ctlType uint8

const (
	ctlPing      ctlType = 1
	ctlPong      ctlType = 2
	ctlGoingAway ctlType = 3
	ctlDrained   ctlType = 4
	ctlLaneClose ctlType = 5 // lane id, streams the sender opened on it
	ctlLaneDone  ctlType = 6 // the same, in answer
	ctlIdle      ctlType = 7 // empty: the sender ends the session for lack of use; going-away follows
)

type ctlFrame struct {
	typ  ctlType
	body []byte
}

func (f ctlFrame) appendBinary(b []byte) []byte {
	b = append(b, byte(f.typ))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.body)))
	return append(b, f.body...)
}

// readCtlFrame reads one control frame; unknown types are returned for the
// caller to skip, oversized ones are an error.
func readCtlFrame(r io.Reader, buf []byte) (ctlFrame, error) {
	var hdr [ctlHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return ctlFrame{}, err
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	if n > MaxControlBody || n > len(buf) {
		return ctlFrame{}, fmt.Errorf("transport: control frame of %d bytes, limit %d", n, MaxControlBody)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return ctlFrame{}, err
	}
	return ctlFrame{typ: ctlType(hdr[0]), body: buf[:n]}, nil
}
