package functions

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseOutputDiscrimination(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []any
		err  string
	}{
		{"message", `{"target":"newMessage","arguments":["hi",1]}`,
			[]any{&Message{Target: "newMessage", Arguments: []any{json.RawMessage(`"hi"`), json.RawMessage(`1`)}}}, ""},
		{"message without arguments", `{"target":"t","userId":"u"}`, []any{&Message{Target: "t", UserID: "u"}}, ""},
		{"message wins over action", `{"target":"t","action":"add","groupName":"g"}`, []any{&Message{Target: "t", GroupName: "g"}}, ""},
		{"case-insensitive names", `{"Target":"t","ConnectionId":"c"}`, []any{&Message{Target: "t", ConnectionID: "c"}}, ""},
		{"group add", `{"action":"add","connectionId":"c","groupName":"g"}`, []any{&GroupAction{Action: GroupAdd, ConnectionID: "c", GroupName: "g"}}, ""},
		{"action case-insensitive", `{"action":"REMOVEALL","userId":"u"}`, []any{&GroupAction{Action: GroupRemoveAll, UserID: "u"}}, ""},
		{"action as integer", `{"action":1,"userId":"u","groupName":"g"}`, []any{&GroupAction{Action: GroupRemove, UserID: "u", GroupName: "g"}}, ""},
		{"endpoints", `{"target":"t","endpoints":[{"endpointType":"Secondary","name":"b","endpoint":"https://b","online":true}]}`,
			[]any{&Message{Target: "t", Endpoints: []EndpointInfo{{EndpointType: "Secondary", Name: "b", Endpoint: "https://b", Online: true}}}}, ""},
		{"array", `[{"target":"a"},{"action":"remove","userId":"u","groupName":"g"}]`,
			[]any{&Message{Target: "a"}, &GroupAction{Action: GroupRemove, UserID: "u", GroupName: "g"}}, ""},
		{"neither", `{"userId":"u"}`, nil, "Unable to convert JObject to valid output binding type, check parameters."},
		{"invalid action", `{"action":"jump","userId":"u"}`, nil, "Unable to convert JObject to valid output binding type, check parameters."},
		{"null target", `{"target":null}`, nil, "Unable to convert JObject"},
		{"wrongly typed field", `{"target":1}`, nil, "Unable to convert JObject"},
		{"null", `null`, nil, "Value cannot be null."},
		{"null item in array", `[{"target":"a"},null]`, nil, "output item 1: Value cannot be null."},
		{"number", `42`, nil, "Unsupport Binding Type."},
		{"broken JSON", `[{"target":`, nil, "output binding value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOutput([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.want)
				t.Fatalf("got %s, want %s", gj, wj)
			}
		})
	}
}

func TestOutputItemValidation(t *testing.T) {
	cases := []struct {
		name string
		item any
		err  error
	}{
		{"message ok", Message{Target: "t"}, nil},
		{"message without target", Message{}, ErrNoTarget},
		{"add connection", GroupAction{Action: GroupAdd, ConnectionID: "c", GroupName: "g"}, nil},
		{"add without group", GroupAction{Action: GroupAdd, ConnectionID: "c"}, ErrNoGroupName},
		{"remove user without group", GroupAction{Action: GroupRemove, UserID: "u"}, ErrNoGroupName},
		{"removeAll user", GroupAction{Action: GroupRemoveAll, UserID: "u"}, nil},
		{"removeAll connection (ignored, valid)", GroupAction{Action: GroupRemoveAll, ConnectionID: "c"}, nil},
		{"no ids", GroupAction{Action: GroupAdd, GroupName: "g"}, ErrNoConnectionOrUser},
		{"no ids, no group", GroupAction{Action: GroupAdd}, ErrNoConnectionOrUser},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			switch v := tc.item.(type) {
			case Message:
				err = v.Validate()
			case GroupAction:
				err = v.Validate()
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if err := (&GroupAction{Action: "jump", UserID: "u"}).Validate(); err == nil {
		t.Fatal("an unknown action must fail")
	}
	if ErrNoGroupName.Error() != "groupName cannot be null or empty" ||
		ErrNoConnectionOrUser.Error() != "ConnectionId and UserId cannot be null or empty together" {
		t.Fatal("error texts must be the extension's")
	}
}

func TestOutputJSONNames(t *testing.T) {
	b, err := json.Marshal(Message{Target: "t", Arguments: []any{1}, UserID: "u", GroupName: "g", ConnectionID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"target":"t","arguments":[1],"userId":"u","groupName":"g","connectionId":"c","endpoints":null}`; string(b) != want {
		t.Fatalf("message JSON %s, want %s", b, want)
	}
	b, _ = json.Marshal(GroupAction{Action: GroupRemoveAll, UserID: "u"})
	if want := `{"action":"removeAll","userId":"u","endpoints":null}`; string(b) != want {
		t.Fatalf("group action JSON %s, want %s", b, want)
	}
}

func TestExpandItems(t *testing.T) {
	items, err := expandItems([]any{
		Message{Target: "a"},
		&GroupAction{Action: GroupAdd, UserID: "u", GroupName: "g"},
		json.RawMessage(`[{"target":"b"},{"target":"c"}]`),
		[]Message{{Target: "d"}},
		map[string]any{"target": "e"},
		`{"action":"removeAll","userId":"u"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range items {
		switch v := it.(type) {
		case *Message:
			kinds = append(kinds, v.Target)
		case *GroupAction:
			kinds = append(kinds, string(v.Action))
		}
	}
	if got := strings.Join(kinds, ","); got != "a,add,b,c,d,e,removeAll" {
		t.Fatalf("items = %s", got)
	}
	if _, err := expandItems([]any{3.5}); !errors.Is(err, ErrUnsupportedItem) {
		t.Fatalf("err = %v", err)
	}
	if _, err := expandItems([]any{(*Message)(nil)}); !errors.Is(err, ErrNilItem) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{
		`{"target":"t","arguments":[1,"a",{"x":null}]}`, `[{"action":"add","userId":"u","groupName":"g"}]`,
		`{"action":2}`, `null`, `[]`, `[null]`, `"x"`, `{"target":"t","endpoints":[{}]}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseOutput(data)
		if err != nil {
			return
		}
		for _, it := range items {
			switch v := it.(type) {
			case *Message:
				_ = v.Validate()
			case *GroupAction:
				_ = v.Validate()
			default:
				t.Fatalf("unexpected item type %T", it)
			}
		}
	})
}

// A JSON array of items is accepted in each of the three text forms Output documents.
func TestExpandItemsJSONArrayForms(t *testing.T) {
	const arr = `[{"target":"a"},{"action":"removeAll","userId":"u"}]`
	for _, item := range []any{json.RawMessage(arr), []byte(arr), arr} {
		items, err := expandItems([]any{item})
		if err != nil {
			t.Errorf("%T: %v", item, err)
			continue
		}
		if len(items) != 2 {
			t.Errorf("%T: %d items, want 2", item, len(items))
		}
	}
}
