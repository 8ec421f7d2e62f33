// Command http-echo is the lab's test server for Services of type LoadBalancer: every HTTP request gets
// one line of JSON naming the pod that answered, the node it runs on (NODE_NAME, from the downward API)
// and the client address the pod saw, so a test can tell who answered and whether the source was kept.
// Standard library only; built static (CGO_ENABLED=0) by lab/components/build.py.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
)

type answer struct {
	Pod    string `json:"pod"`
	Node   string `json:"node"`
	Client string `json:"client"`
}

func main() {
	listen := flag.String("listen", ":8080", "address and port to serve on")
	flag.Parse()
	pod, err := os.Hostname()
	if err != nil {
		log.Fatalf("no hostname: %v", err)
	}
	node := os.Getenv("NODE_NAME")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(answer{Pod: pod, Node: node, Client: client}); err != nil {
			log.Printf("answering %s: %v", client, err)
		}
	})
	log.Printf("http-echo %s on node %q serving %s", pod, node, *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
