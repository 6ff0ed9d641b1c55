# The template of an import, for scripts/deploy.sh's import_template: the Parameters, Rules,
# Mappings and Conditions of the template, and only the resources named in KEEP (" id id ")
# with their DeletionPolicy, without DependsOn and Condition and without the properties that
# name another resource. Reads the template twice: awk -v keep=" A B " -f import-template.awk T T

# First pass: every resource id of the template.
FNR == NR { if (/^[A-Za-z]/) top = $1; if (top == "Resources:" && /^  [A-Za-z0-9]+:$/) all[substr($1, 1, length($1) - 1)]; next }
# True when TEXT refers (Ref, GetAtt, ${...}) to a resource that is not imported.
function names_other(text,   token) {
  while (match(text, /(!Ref|!GetAtt|Ref:|Fn::GetAtt:) *\[? *[A-Za-z0-9]+|\$\{[A-Za-z0-9]+/)) {
    token = substr(text, RSTART, RLENGTH)
    text = substr(text, RSTART + RLENGTH)
    sub(/^.*[ [{]/, "", token)
    if ((token in all) && index(keep, " " token " ") == 0) return 1
  }
  return 0
}
# A property (six spaces in) is printed whole, or left out whole.
function flush() { if (chunk != "" && !names_other(chunk)) printf "%s", chunk; chunk = "" }
/^[A-Za-z]/ {
  flush(); top = $1
  copying = (top ~ /^(AWSTemplateFormatVersion|Parameters|Rules|Mappings|Conditions):/)
  if (copying || top == "Resources:") print
  next
}
copying { print; next }
top != "Resources:" || /^[[:space:]]*#/ { next }
/^  [A-Za-z0-9]+:$/ { flush(); wanted = index(keep, " " substr($1, 1, length($1) - 1) " ") > 0; if (wanted) print; next }
!wanted { next }
/^    [A-Za-z]/ { flush(); skipping = ($1 ~ /^(DependsOn|Condition):/); if (!skipping) print; next }
skipping { next }
/^      [A-Za-z"]/ { flush(); chunk = $0 "\n"; next }
chunk != "" { chunk = chunk $0 "\n"; next }
{ print }
END { flush() }
