// Command gen-openapi writes the OpenAPI document of the xhub JSON API,
// generated from the xhub.v1 descriptors (run by `go generate ./proto/...`).
package main

import (
	"flag"
	"log"
	"os"

	"github.com/xhub-gov/xhub/internal/jsonapi"
)

func main() {
	out := flag.String("out", "xhub.openapi.json", "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, jsonapi.OpenAPI(), 0o644); err != nil {
		log.Fatal(err)
	}
}
