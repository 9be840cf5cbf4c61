package identity

import "errors"

// The two alphabets of the peer ID text forms. Base58btc is the Bitcoin
// alphabet (no 0, O, I, l); base36 is digits then lower-case letters.
const (
	base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	base36Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// maxBaseXLen bounds the text accepted by decodeBaseX, so the quadratic
// decoding loop stays cheap on hostile input. A peer ID is at most 62
// characters in either form.
const maxBaseXLen = 128

var errBaseXDigit = errors.New("invalid digit")

// encodeBaseX writes src as a big-endian number in the given alphabet. Each
// leading zero byte becomes one leading zero digit (alphabet[0]), as in
// base58btc and multibase base36.
func encodeBaseX(alphabet string, src []byte) string {
	base := uint32(len(alphabet))
	zeros := 0
	for zeros < len(src) && src[zeros] == 0 {
		zeros++
	}
	// digits holds the number in base `base`, least significant digit first.
	// log(256)/log(base) <= 1.55 for base 36, so 2 digits per byte suffice.
	digits := make([]byte, 0, 2*len(src))
	for _, b := range src[zeros:] {
		carry := uint32(b)
		for i := range digits {
			carry += uint32(digits[i]) << 8
			digits[i] = byte(carry % base)
			carry /= base
		}
		for carry > 0 {
			digits = append(digits, byte(carry%base))
			carry /= base
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := range zeros {
		out[i] = alphabet[0]
	}
	for i, d := range digits {
		out[len(out)-1-i] = alphabet[d]
	}
	return string(out)
}

// decodeBaseX is the inverse of encodeBaseX. The caller has checked that
// len(s) <= maxBaseXLen.
func decodeBaseX(alphabet string, s string) ([]byte, error) {
	var index [256]int16
	for i := range index {
		index[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		index[alphabet[i]] = int16(i)
	}
	base := uint32(len(alphabet))
	zeros := 0
	for zeros < len(s) && s[zeros] == alphabet[0] {
		zeros++
	}
	// num holds the value, least significant byte first.
	num := make([]byte, 0, len(s))
	for i := zeros; i < len(s); i++ {
		d := index[s[i]]
		if d < 0 {
			return nil, errBaseXDigit
		}
		carry := uint32(d)
		for j := range num {
			carry += uint32(num[j]) * base
			num[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(num))
	for i, b := range num {
		out[len(out)-1-i] = b
	}
	return out, nil
}
