// Command signalbox is a self-hosted SignalR service compatible with Azure SignalR
// Service in serverless mode.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("signalbox dev")
		return
	}
	fmt.Fprintln(os.Stderr, "usage: signalbox serve|version")
	os.Exit(2)
}
