package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/engine/build"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/engine/api"
	"github.com/berth-dev/berth/engine/image"
)

func newImageCommand(opts *globalOptions) *cobra.Command {
	return group("image", "Manage images",
		newImageImportCommand(opts),
		newImageLoadCommand(opts),
		newImageSaveCommand(opts),
		newImagePullCommand(opts),
		newImagePushCommand(opts),
		newImageListCommand(opts),
		newImageInspectCommand(opts),
		newImageHistoryCommand(opts),
		newImageRemoveCommand(opts),
		newImageTagCommand(opts),
		newImagePruneCommand(opts),
	)
}

// imageClient connects to the daemon (starting it when needed) and returns
// its image store.
func imageClient(cmd *cobra.Command, opts *globalOptions) (*api.ImageClient, error) {
	c, err := connect(cmd.Context(), opts)
	if err != nil {
		return nil, err
	}
	return c.Images(), nil
}

// imageRow is one line of `image ls`, with docker's JSON field names.
type imageRow struct {
	Containers   string `json:"Containers"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedSince string `json:"CreatedSince"`
	Digest       string `json:"Digest"`
	ID           string `json:"ID"`
	Repository   string `json:"Repository"`
	SharedSize   string `json:"SharedSize"`
	Size         string `json:"Size"`
	Tag          string `json:"Tag"`
	UniqueSize   string `json:"UniqueSize"`
	VirtualSize  string `json:"VirtualSize"`
}

type imageListOptions struct {
	all, quiet, digests, noTrunc bool
	filters                      []string
	format                       string
}

func newImageListCommand(opts *globalOptions) *cobra.Command {
	o := &imageListOptions{}
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageList(cmd, opts, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (intermediate ones too)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&o.digests, "digests", false, "Show digests")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringArrayVar(&o.filters, "filter", nil, "Filter output (dangling=true|false, reference=PATTERN)")
	f.StringVar(&o.format, "format", "", "Format output: table, json or a Go template")
	return cmd
}

func runImageList(cmd *cobra.Command, opts *globalOptions, o *imageListOptions, args []string) error {
	var lo image.ListOptions
	for _, f := range o.filters {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "dangling":
			b := v == "true" || v == "1"
			lo.Dangling = &b
		case "reference":
			lo.References = append(lo.References, v)
		default:
			return fmt.Errorf("invalid filter %q (dangling or reference)", k)
		}
	}
	if len(args) == 1 {
		lo.References = append(lo.References, args[0])
	}
	if !o.all {
		lo.HideHeldOnlyBy = build.CacheHolder
	}
	ic, err := imageClient(cmd, opts)
	if err != nil {
		return err
	}
	images, err := ic.List(cmd.Context(), lo)
	if err != nil {
		return err
	}
	rows := imageRows(images, o.noTrunc)
	out := cmd.OutOrStdout()
	if o.quiet {
		for _, r := range rows {
			fmt.Fprintln(out, r.ID)
		}
		return nil
	}
	return listFormat(out, o.format, rows, func(w io.Writer, rows []imageRow) error {
		tw := newTable(w)
		header := "REPOSITORY\tTAG\t"
		if o.digests {
			header += "DIGEST\t"
		}
		fmt.Fprintln(tw, header+"IMAGE ID\tCREATED\tSIZE")
		for _, r := range rows {
			line := r.Repository + "\t" + r.Tag + "\t"
			if o.digests {
				line += r.Digest + "\t"
			}
			fmt.Fprintln(tw, line+r.ID+"\t"+r.CreatedSince+"\t"+r.Size)
		}
		return tw.Flush()
	})
}

// imageRows expands images into docker's rows: one per name, or one
// <none>:<none> row for an untagged image.
func imageRows(images []image.Summary, noTrunc bool) []imageRow {
	var rows []imageRow
	for _, img := range images {
		id := img.ID
		if !noTrunc {
			id = strings.TrimPrefix(id, "sha256:")[:12]
		}
		base := imageRow{
			Containers: "N/A", CreatedAt: dockerTime(img.Created), CreatedSince: humanSince(img.Created),
			Digest: "<none>", ID: id, SharedSize: "N/A", Size: humanSize(img.Size), UniqueSize: "N/A",
			VirtualSize: humanSize(img.Size), Repository: "<none>", Tag: "<none>",
		}
		digests := map[string]string{} // familiar repository -> digest
		for _, d := range img.RepoDigests {
			repo, digest, ok := strings.Cut(d, "@")
			if !ok {
				continue
			}
			if r, err := image.ParseReference(repo); err == nil {
				digests[r.FamiliarName()] = digest
			}
		}
		if len(img.RepoTags) == 0 {
			rows = append(rows, base)
			continue
		}
		for _, t := range img.RepoTags {
			r, err := image.ParseReference(t)
			if err != nil {
				continue
			}
			row := base
			row.Repository, row.Tag = r.FamiliarName(), r.Tag
			if d, ok := digests[r.FamiliarName()]; ok {
				row.Digest = d
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func newImageInspectCommand(opts *globalOptions) *cobra.Command {
	format := ""
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Show details of images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			var found []image.Details
			var errs []error
			for _, a := range args {
				d, err := ic.Inspect(cmd.Context(), a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				found = append(found, d)
			}
			out := cmd.OutOrStdout()
			if format != "" && format != "json" {
				tmpl, err := parseTemplate(format)
				if err != nil {
					return err
				}
				for _, d := range found {
					if err := tmpl.Execute(out, d); err != nil {
						return err
					}
					fmt.Fprintln(out)
				}
			} else {
				if found == nil {
					found = []image.Details{}
				}
				b, err := json.MarshalIndent(found, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s\n", b)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output: json or a Go template")
	return cmd
}

// historyRow is one line of `image history`, with docker's JSON field names.
type historyRow struct {
	Comment      string `json:"Comment"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedBy    string `json:"CreatedBy"`
	CreatedSince string `json:"CreatedSince"`
	ID           string `json:"ID"`
	Size         string `json:"Size"`
}

func newImageHistoryCommand(opts *globalOptions) *cobra.Command {
	var human, noTrunc, quiet bool
	format := ""
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			hist, err := ic.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var rows []historyRow
			for _, h := range hist {
				row := historyRow{Comment: h.Comment, CreatedBy: h.CreatedBy, ID: h.ID, CreatedAt: dockerTime(h.Created), CreatedSince: humanSince(h.Created)}
				if !noTrunc && strings.HasPrefix(row.ID, "sha256:") {
					row.ID = strings.TrimPrefix(row.ID, "sha256:")[:12]
				}
				row.Size = fmt.Sprint(h.Size)
				if human {
					row.Size = humanSize(h.Size)
				}
				rows = append(rows, row)
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(out, r.ID)
				}
				return nil
			}
			return listFormat(out, format, rows, func(w io.Writer, rows []historyRow) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
				for _, r := range rows {
					by := strings.ReplaceAll(r.CreatedBy, "\t", " ")
					if !noTrunc && len([]rune(by)) > 45 {
						by = string([]rune(by)[:44]) + "…"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedSince, by, r.Size, r.Comment)
				}
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&human, "human", true, "Print sizes and dates in human readable format")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.StringVar(&format, "format", "", "Format output: table, json or a Go template")
	return cmd
}

func newImageRemoveCommand(opts *globalOptions) *cobra.Command {
	var ro image.RemoveOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] IMAGE [IMAGE...]",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove images",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var errs []error
			for _, a := range args {
				dels, err := ic.Remove(cmd.Context(), a, ro)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				printDeletions(out, dels, "Untagged: ", "Deleted: ")
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&ro.Force, "force", false, "Force removal of the image")
	var noPrune bool
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents (berth images have none)")
	return cmd
}

func printDeletions(w io.Writer, dels []image.Deletion, untagged, deleted string) {
	for _, d := range dels {
		if d.Untagged != "" {
			fmt.Fprintln(w, untagged+d.Untagged)
		}
		if d.Deleted != "" {
			fmt.Fprintln(w, deleted+d.Deleted)
		}
	}
}

func newImageTagCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag that refers to an image",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			return ic.Tag(cmd.Context(), args[0], args[1])
		},
	}
}

func newImagePruneCommand(opts *globalOptions) *cobra.Command {
	var po image.PruneOptions
	force := false
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if !force {
				warning := "WARNING! This will remove all dangling images."
				if po.All {
					warning = "WARNING! This will remove all images without at least one container associated to them."
				}
				if !confirm(cmd.InOrStdin(), out, warning) {
					return nil
				}
			}
			ic, err := imageClient(cmd, opts)
			if err != nil {
				return err
			}
			rep, err := ic.Prune(cmd.Context(), po)
			if err != nil {
				return err
			}
			if len(rep.ImagesDeleted) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				printDeletions(out, rep.ImagesDeleted, "untagged: ", "deleted: ")
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.SpaceReclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&po.All, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVar(&force, "force", false, "Do not prompt for confirmation")
	return cmd
}

// confirm asks a yes/no question as docker does; anything but y or yes,
// including no answer at all, is no.
func confirm(in io.Reader, out io.Writer, warning string) bool {
	fmt.Fprintf(out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}
