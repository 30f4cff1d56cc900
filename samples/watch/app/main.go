// Command app answers every request with $GREETING and the replica's
// hostname: the smallest service to watch change when compose.yaml does.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	greeting := os.Getenv("GREETING")
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (from %s)\n", greeting, host)
	})
	log.Fatal(http.ListenAndServe(":80", nil))
}
