package main

import "github.com/spf13/cobra"

const imageStore = "the image store"

func newImageCommand(opts *globalOptions) *cobra.Command {
	return group("image", "Manage images",
		stub("import TARBALL NAME", "Import a root filesystem tarball as an image", imageStore),
		stub("load", "Load an image from a docker-archive or OCI-layout tarball", imageStore),
		stub("save IMAGE...", "Save images to a tarball", imageStore),
		stub("pull NAME", "Pull an image from a registry", imageStore),
		stub("push NAME", "Push an image to a registry", imageStore),
		stub("ls", "List images", imageStore),
		stub("inspect IMAGE...", "Show details of images", imageStore),
		stub("history IMAGE", "Show the history of an image", imageStore),
		stub("rm IMAGE...", "Remove images", imageStore),
		stub("tag SOURCE TARGET", "Create a tag that refers to an image", imageStore),
		stub("prune", "Remove unused image data", imageStore),
	)
}

func newLoginCommand(opts *globalOptions) *cobra.Command {
	return stub("login [SERVER]", "Log in to a registry", imageStore)
}

func newLogoutCommand(opts *globalOptions) *cobra.Command {
	return stub("logout [SERVER]", "Log out from a registry", imageStore)
}
