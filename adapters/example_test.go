package adapters_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/hub"
)

// Dial a hub with a creds file and browse the catalog. Here the hub is
// started in-process in a temp dir; against a real hub, only Dial remains.
func ExampleDial() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "xhub-example-")
	defer os.RemoveAll(dir)
	node, err := hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	client, err := adapters.Dial(ctx, node.AdminCreds) // the hub address is in the creds file
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	fmt.Println("acting as", client.Identity())

	if _, err := client.AddDepartment(ctx, "health", "Health Commission"); err != nil {
		log.Fatal(err)
	}
	list, err := client.Departments(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range list {
		fmt.Println(d.ID, "-", d.Name)
	}
	// Output:
	// acting as spiffe://xhub/dept/hub/admin/admin
	// health - Health Commission
}
