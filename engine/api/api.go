// Package api is the wire between berth's CLI and its daemon: HTTP with JSON
// bodies over a unix socket, versioned by path (/v1/...).
//
// Errors cross the socket with their class: the server answers an error with
// the HTTP status of its errdefs class and a JSON body {"message": ...}; the
// client turns the status back into that class, so callers on the CLI side
// can use errdefs.IsNotFound and friends as if the engine were in-process.
//
// Long operations (pull, build, up) answer with a stream: newline-delimited
// JSON values, one per event, ending in a final value of kind "result" or
// "error".
package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/containerd/errdefs"
)

// Version is the path prefix of this version of the API.
const Version = "v1"

// ErrorBody is the JSON body of an error answer.
type ErrorBody struct {
	Message string `json:"message"`
}

// VersionInfo describes one side of the socket, as `berth version` shows it.
type VersionInfo struct {
	Version    string `json:"Version"`
	APIVersion string `json:"ApiVersion"`
	GoVersion  string `json:"GoVersion"`
	Os         string `json:"Os"`
	Arch       string `json:"Arch"`
	Pid        int    `json:"Pid,omitempty"`
	Root       string `json:"Root,omitempty"`
}

// StreamMessage is one line of a streamed answer. Kind "event" carries
// progress; the last line has kind "result" (with the operation's answer in
// Result) or "error".
type StreamMessage struct {
	Kind   string          `json:"kind"`
	Event  json.RawMessage `json:"event,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Status int             `json:"status,omitempty"`
}

// classes pairs each error class with its HTTP status, most specific first.
var classes = []struct {
	is     func(error) bool
	class  error
	status int
}{
	{errdefs.IsNotFound, errdefs.ErrNotFound, http.StatusNotFound},
	{errdefs.IsAlreadyExists, errdefs.ErrAlreadyExists, http.StatusConflict},
	{errdefs.IsConflict, errdefs.ErrConflict, http.StatusConflict},
	{errdefs.IsInvalidArgument, errdefs.ErrInvalidArgument, http.StatusBadRequest},
	{errdefs.IsFailedPrecondition, errdefs.ErrFailedPrecondition, http.StatusPreconditionFailed},
	{errdefs.IsNotImplemented, errdefs.ErrNotImplemented, http.StatusNotImplemented},
	{errdefs.IsUnavailable, errdefs.ErrUnavailable, http.StatusServiceUnavailable},
	{errdefs.IsPermissionDenied, errdefs.ErrPermissionDenied, http.StatusForbidden},
	{errdefs.IsUnauthorized, errdefs.ErrUnauthenticated, http.StatusUnauthorized},
	{errdefs.IsResourceExhausted, errdefs.ErrResourceExhausted, http.StatusInsufficientStorage},
	{errdefs.IsCanceled, context.Canceled, 499},
	{errdefs.IsDeadlineExceeded, context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// StatusOf returns the HTTP status for err's class (500 when it has none).
func StatusOf(err error) int {
	for _, c := range classes {
		if c.is(err) {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// ErrorFromStatus rebuilds an error of the class that status stands for,
// printing as message.
func ErrorFromStatus(status int, message string) error {
	// AlreadyExists and Conflict share 409; the message tells them apart only
	// for a human, so 409 comes back as Conflict, which IsAlreadyExists
	// callers must also accept.
	if status == http.StatusConflict {
		return withMessage(errdefs.ErrConflict, message)
	}
	for _, c := range classes {
		if c.status == status {
			return withMessage(c.class, message)
		}
	}
	return withMessage(errdefs.ErrUnknown, message)
}

type messager interface{ WithMessage(string) error }

func withMessage(class error, message string) error {
	if m, ok := class.(messager); ok {
		return m.WithMessage(message)
	}
	return &classed{class: class, message: message}
}

// classed prints message and matches class with errors.Is, for the classes
// (context's) that have no WithMessage of their own.
type classed struct {
	class   error
	message string
}

func (e *classed) Error() string { return e.message }
func (e *classed) Unwrap() error { return e.class }
