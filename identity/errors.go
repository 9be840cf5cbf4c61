package identity

import "fmt"

// sentinelError is an error with its own message that matches a sentinel
// under errors.Is, so the message can read naturally ("identity: key file
// /x has mode 0644 …") instead of "sentinel text: detail".
type sentinelError struct {
	msg      string
	sentinel error
	cause    error // optional underlying error
}

func (e *sentinelError) Error() string { return e.msg }

func (e *sentinelError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.sentinel}
	}
	return []error{e.sentinel, e.cause}
}

// errorf returns an error with the formatted message that matches sentinel.
func errorf(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}
