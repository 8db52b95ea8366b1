// The pod sandbox's process: it holds the pod's namespaces and sleeps until
// it is told to stop. No image registry is reachable here, so the cluster tier
// builds this one (scripts/cluster-images.sh) instead of pulling registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
