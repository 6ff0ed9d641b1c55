"""Stand-ins for Cloud Exchange's four images, built here from Debian packages by
standin_images/build.sh. Each module is copied into the images under /opt/standin and
run there with the image's python3; none is Netskope's or MongoDB's code. See docs/run-local.md
for what they prove and what they do not."""
