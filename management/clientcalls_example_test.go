package management_test

import (
	"context"
	"fmt"

	"github.com/signalbox-io/signalbox/management"
)

func ExampleClient_Execute() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	err := client.Execute(context.Background(), "chat", "startswith(userId, 'listener-')", []management.Command{
		{Type: management.CommandJoinGroup, Group: "listeners"},
		{Type: management.CommandSendMessage, Target: "welcome", Arguments: []any{"hi"}},
	}, nil)
	fmt.Println(err)
	// Output:
	// POST /api/hubs/chat/:execute?api-version=2023-07-01&filter=startswith%28userId%2C+%27listener-%27%29 [{"type":"JoinGroup","group":"listeners"},{"type":"SendMessage","message":{"Target":"welcome","Arguments":["hi"]}}]
	// <nil>
}

func ExampleClient_CompleteStream() {
	srv := fakeSignalR()
	defer srv.Close()
	client := newClient(srv.URL)
	defer client.Close()

	ctx := context.Background()
	// "0" is the invocation id of the client's stream invocation, as the trigger saw it.
	fmt.Println(client.SendStreamItem(ctx, "chat", "conn1", "0", 42, nil))
	fmt.Println(client.CompleteStream(ctx, "chat", "conn1", "0", nil))
	// Output:
	// POST /api/hubs/chat/connections/conn1/streams/0/:send?api-version=2024-12-01 42
	// <nil>
	// POST /api/hubs/chat/connections/conn1/streams/0/:complete?api-version=2024-12-01
	// <nil>
}
