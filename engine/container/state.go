package container

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// Status is where a container is in its life, in docker's words.
type Status string

const (
	Created    Status = "created"
	Running    Status = "running"
	Paused     Status = "paused"
	Restarting Status = "restarting" // exited, and the policy will start it again
	Exited     Status = "exited"
	Removing   Status = "removing"
	Dead       Status = "dead" // removal failed half-way; rm -f finishes it
)

// transitions lists the legal moves; everything else is refused with an
// error naming both ends.
var transitions = map[Status][]Status{
	Created:    {Running, Exited, Removing, Dead},
	Running:    {Paused, Exited, Restarting, Dead},
	Paused:     {Running, Exited, Dead},
	Restarting: {Running, Exited, Removing, Dead},
	Exited:     {Running, Restarting, Removing, Dead},
	Removing:   {Dead},
	Dead:       {Removing},
}

// IllegalTransition is the error of a move the state machine does not allow.
type IllegalTransition struct {
	From, To Status
}

func (e *IllegalTransition) Error() string {
	return fmt.Sprintf("container is %s: cannot become %s", e.From, e.To)
}

// Is makes an illegal transition a failed precondition for errdefs callers.
func (e *IllegalTransition) Is(target error) bool { return target == errdefs.ErrFailedPrecondition }

// CanBecome reports whether from may move to to.
func CanBecome(from, to Status) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return &IllegalTransition{From: from, To: to}
}
