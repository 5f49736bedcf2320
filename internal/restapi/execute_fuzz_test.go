package restapi

import (
	"errors"
	"testing"
)

// FuzzExecuteCommands: the :execute body parser accepts only well-formed command lists
// (every SendMessage with a payload, every group command with a valid group) and
// refuses the rest with a 400 apiError, never a panic.
func FuzzExecuteCommands(f *testing.F) {
	for _, seed := range []string{
		`[{"type":"SendMessage","message":{"target":"t","arguments":[1]}}]`,
		`[{"type":"joingroup","group":"g"},{"type":"LeaveGroup","group":"g"},{"type":"CloseConnection","reason":"r"}]`,
		`[]`, `{}`, `[{"type":"SendMessage"}]`, `[{"type":"JoinGroup","group":""}]`, `[{"type":7}]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := parseCommands(data, DefaultMaxArgumentDepth)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.kind != errInvalid {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if len(cmds) == 0 || len(cmds) > MaxCommands {
			t.Fatalf("%d commands accepted", len(cmds))
		}
		for _, c := range cmds {
			switch c.Type {
			case "SendMessage":
				if c.payload == nil {
					t.Fatal("SendMessage without payload")
				}
			case "JoinGroup", "LeaveGroup":
				if c.Group == nil || checkGroup(*c.Group) != nil {
					t.Fatalf("%s with group %v", c.Type, c.Group)
				}
			case "CloseConnection":
			default:
				t.Fatalf("type %q accepted", c.Type)
			}
		}
	})
}
