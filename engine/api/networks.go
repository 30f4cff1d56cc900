package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/engine/network"
)

// NetworkEngine is what the network endpoints serve from: the engine's
// network methods, which keep the DNS listeners in step.
type NetworkEngine interface {
	ListNetworks(ctx context.Context, labels map[string]string) ([]network.Network, error)
	CreateNetwork(ctx context.Context, opts network.CreateOptions) (network.Network, error)
	RemoveNetwork(ctx context.Context, name string) error
	Network(ctx context.Context, name string) (network.Network, error)
}

// NetworkDetails is `network inspect`'s answer: the network and who is on it.
type NetworkDetails struct {
	network.Network
	Containers []network.Endpoint `json:"Containers"`
}

// RegisterNetworkRoutes serves the network endpoints.
func RegisterNetworkRoutes(mux *http.ServeMux, e NetworkEngine, endpoints func(string) ([]network.Endpoint, error)) {
	p := "/" + Version + "/networks"
	mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
		out, err := e.ListNetworks(r.Context(), labelFilter(r.URL.Query()))
		if out == nil {
			out = []network.Network{}
		}
		answer(w, out, err)
	})
	mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) {
		var opts network.CreateOptions
		if err := DecodeJSON(r, &opts); err != nil {
			WriteError(w, err)
			return
		}
		n, err := e.CreateNetwork(r.Context(), opts)
		answer(w, n, err)
	})
	mux.HandleFunc("GET "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		n, err := e.Network(r.Context(), r.PathValue("name"))
		if err != nil {
			WriteError(w, err)
			return
		}
		eps, err := endpoints(n.Name)
		if eps == nil {
			eps = []network.Endpoint{}
		}
		answer(w, NetworkDetails{Network: n, Containers: eps}, err)
	})
	mux.HandleFunc("DELETE "+p+"/{name}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, nil, e.RemoveNetwork(r.Context(), r.PathValue("name")))
	})
}

// NetworkClient reaches a daemon's networks.
type NetworkClient struct{ c *Client }

// Networks returns the client of the daemon's networks.
func (c *Client) Networks() *NetworkClient { return &NetworkClient{c: c} }

// List returns the networks whose labels match.
func (nc *NetworkClient) List(ctx context.Context, labels map[string]string) ([]network.Network, error) {
	q := url.Values{}
	for k, v := range labels {
		q.Add("label", k+"="+v)
	}
	var out []network.Network
	err := nc.c.Call(ctx, http.MethodGet, "/"+Version+"/networks?"+q.Encode(), nil, &out)
	return out, err
}

// Create makes a network.
func (nc *NetworkClient) Create(ctx context.Context, opts network.CreateOptions) (network.Network, error) {
	var out network.Network
	err := nc.c.Call(ctx, http.MethodPost, "/"+Version+"/networks", opts, &out)
	return out, err
}

// Inspect returns a network and its endpoints.
func (nc *NetworkClient) Inspect(ctx context.Context, name string) (NetworkDetails, error) {
	var out NetworkDetails
	err := nc.c.Call(ctx, http.MethodGet, "/"+Version+"/networks/"+url.PathEscape(name), nil, &out)
	return out, err
}

// Remove deletes a network.
func (nc *NetworkClient) Remove(ctx context.Context, name string) error {
	return nc.c.Call(ctx, http.MethodDelete, "/"+Version+"/networks/"+url.PathEscape(name), nil, nil)
}
