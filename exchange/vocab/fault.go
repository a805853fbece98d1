// This file owns the error kinds that domain packages share: invalid
// input naming the field, a missing or already existing thing, a state that
// forbids the call, a caller without the right. The API layer maps each kind
// to one gRPC status code with google.rpc details; domain packages never see
// gRPC.

package vocab

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error for the caller.
type Kind int

const (
	KindInvalid      Kind = iota + 1 // the input is malformed or out of bounds
	KindNotFound                     // the thing named does not exist
	KindExists                       // the thing already exists
	KindPrecondition                 // the current state forbids the call
	KindDenied                       // the caller may not do this
	KindUnavailable                  // try again later
	KindExhausted                    // a bound on the caller's resources is reached
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindExists:
		return "exists"
	case KindPrecondition:
		return "precondition"
	case KindDenied:
		return "denied"
	case KindUnavailable:
		return "unavailable"
	case KindExhausted:
		return "exhausted"
	}
	return "unknown"
}

// Violation names one thing that is wrong: a field of the input (for
// KindInvalid) or a subject of the state (for KindPrecondition).
type Violation struct {
	Field       string // input field, or precondition subject
	Type        string // precondition type, e.g. "SCHEMA_COMPATIBILITY"
	Description string
}

// Error is a classified error. It matches errors.Is against a bare Kind
// sentinel made with Is(kind).
type Error struct {
	Kind       Kind
	Msg        string
	Violations []Violation
	// Op, if set, is the operation refused ("approve share"); it is not
	// part of the message, which already says what was wrong.
	Op string
	// Err, if set, is the cause (errors.Unwrap).
	Err error
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// WithOp returns a copy of e naming the operation refused.
func (e *Error) WithOp(op string) *Error {
	c := *e
	c.Op = op
	return &c
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		if v.Field != "" {
			parts = append(parts, v.Field+": "+v.Description)
		} else {
			parts = append(parts, v.Description)
		}
	}
	if len(parts) == 0 {
		return e.Kind.String()
	}
	return strings.Join(parts, "; ")
}

// Is reports whether target is an *Error of the same kind with no message,
// so errors.Is(err, Sentinel(KindNotFound)) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Violations == nil && t.Op == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrInvalid      = &Error{Kind: KindInvalid}
	ErrNotFound     = &Error{Kind: KindNotFound}
	ErrExists       = &Error{Kind: KindExists}
	ErrPrecondition = &Error{Kind: KindPrecondition}
	ErrDenied       = &Error{Kind: KindDenied}
	ErrUnavailable  = &Error{Kind: KindUnavailable}
	ErrExhausted    = &Error{Kind: KindExhausted}
)

// Invalid reports a bad input field.
func Invalid(field, format string, args ...any) *Error {
	d := fmt.Sprintf(format, args...)
	return &Error{Kind: KindInvalid, Msg: field + ": " + d, Violations: []Violation{{Field: field, Description: d}}}
}

// NotFound reports that the named thing does not exist.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, args...)}
}

// Exists reports that the named thing already exists.
func Exists(format string, args ...any) *Error {
	return &Error{Kind: KindExists, Msg: fmt.Sprintf(format, args...)}
}

// Precondition reports a state that forbids the call.
func Precondition(typ, subject, format string, args ...any) *Error {
	d := fmt.Sprintf(format, args...)
	return &Error{Kind: KindPrecondition, Msg: d, Violations: []Violation{{Type: typ, Field: subject, Description: d}}}
}

// Exhausted reports that the caller reached a bound on a resource that
// grows on request; subject names whose resource (e.g. "dept:tax") and
// the message names the bound.
func Exhausted(subject, format string, args ...any) *Error {
	d := fmt.Sprintf(format, args...)
	return &Error{Kind: KindExhausted, Msg: d, Violations: []Violation{{Field: subject, Description: d}}}
}

// Denied reports a caller without the right.
func Denied(format string, args ...any) *Error {
	return &Error{Kind: KindDenied, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err, or 0 if it is not classified.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Bytes writes n for a refusal's message, in the largest binary unit that
// keeps a digit before the point ("512 B", "1.5 MiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[u-1])
}
