# bash completion for credsync                                   -*- shell-script -*-
#
# Installed as /usr/share/bash-completion/completions/credsync; by hand:
#   source contrib/completion/credsync.bash
#
# Nothing here lists credsync's commands or options: they are read from `credsync help`
# and `credsync help COMMAND` each time, so a new command or option is completed as soon as
# its help text exists.  Instance and group IDs come from `credsync __complete`, which reads
# the same config file the command will (-c, $CREDSYNC_CONFIG, the search order) with the
# real loader and never touches the network.

# The credsync to ask: the one being completed when it can be run, else the one on PATH.
_credsync_bin()
{
    local b=${COMP_WORDS[0]}
    b=${b/#\~/$HOME}
    if [[ $b == */* && -x $b ]] || command -v -- "$b" >/dev/null 2>&1; then
        printf '%s\n' "$b"
    else
        printf 'credsync\n'
    fi
}

# _credsync_help BIN [COMMAND]: the help text, quietly.
_credsync_help()
{
    "$1" help ${2:+"$2"} 2>/dev/null
}

# The commands: the first word of each line of the overview's "commands:" section.
_credsync_commands()
{
    _credsync_help "$1" | sed -n '/^commands:/,/^$/{/^  [a-z]/{s/^  \([a-z][a-z0-9-]*\).*/\1/p}}'
}

# The overview's "global options:" section (every command accepts them).
_credsync_global_help()
{
    _credsync_help "$1" | sed -n '/^global options:/,/^$/p'
}

# The options a help text mentions (long ones, and short ones written "-x, --long").
_credsync_options()
{
    local text=$1
    {
        grep -oE -- '--[a-z][a-z0-9-]*' <<<"$text"
        grep -oE -- '^ +-[a-zA-Z], --' <<<"$text" | grep -oE -- '-[a-zA-Z]'
    } | sort -u
}

# _credsync_argkind TEXT OPTION: what OPTION's argument is, from how the help writes it
# ("--format text|json" -> values; "--instance ID" -> instance; "-o, --output FILE" -> file),
# or nothing when OPTION takes none.
_credsync_argkind()
{
    local text=$1 opt=$2 long=$2 line meta
    if [[ $opt != --* ]]; then
        # a short option: find its long name on its "-x, --long" line
        line=$(grep -E -- "^ +$opt, --[a-z]" <<<"$text" | head -n 1)
        [[ $line =~ (--[a-z][a-z0-9-]*) ]] && long=${BASH_REMATCH[1]}
    fi
    # the fixed words ("text|json") win over a placeholder ("FMT") written elsewhere
    meta=$(grep -oE -- "$long[ =]([A-Z][A-Z_]*|[a-z0-9]+(\|[a-z0-9]+)+)" <<<"$text" |
           awk '/\|/ { print; found = 1; exit } NR == 1 { first = $0 } END { if (!found && NR) print first }')
    meta=${meta#"$long"}
    meta=${meta:1}
    [[ -z $meta ]] && return
    case $long in
        --instance) echo instance; return ;;
        --group) echo group; return ;;
        --region) echo region; return ;;
        --config|--database|--output|--metrics-file) echo file; return ;;
    esac
    case $meta in
        *\|*) echo "values ${meta//|/ }" ;;
        FILE|PATH|DB|P) echo file ;;
        REF) echo ref ;;
        *) echo none ;;
    esac
}

_credsync()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev= bin cmd= i w text argtext kind
    local -a cfg=()
    COMPREPLY=()
    bin=$(_credsync_bin)
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    # "--format=js" arrives as "--format" "=" "js" (= is a word break)
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi

    # the command, and any -c FILE (so IDs come from the config the command will read)
    for (( i = 1; i < COMP_CWORD; i++ )); do
        w=${COMP_WORDS[i]}
        case $w in
            -c|--config)
                (( i + 1 < COMP_CWORD )) && cfg=(-c "${COMP_WORDS[i+1]}")
                (( i++ )) ;;
            -d|--database|--log-format) (( i++ )) ;;
            -*) ;;
            *) [[ -z $cmd && $w != = ]] && cmd=$w ;;
        esac
    done

    if [[ -z $cmd ]]; then
        text=$(_credsync_global_help "$bin")
    elif [[ $cmd == help ]]; then
        COMPREPLY=($(compgen -W "$(_credsync_commands "$bin")" -- "$cur"))
        return 0
    else
        # a command accepts the global options too
        text=$(_credsync_help "$bin" "$cmd"; _credsync_global_help "$bin")
    fi

    # how an option's argument is written may be in the overview's usage line only
    # ("[--log-format text|json]")
    argtext=$text$'\n'$(_credsync_help "$bin")
    kind=
    [[ $prev == -* ]] && kind=$(_credsync_argkind "$argtext" "$prev")
    case $kind in
        values\ *)
            COMPREPLY=($(compgen -W "${kind#values }" -- "$cur")); return 0 ;;
        instance)
            COMPREPLY=($(compgen -W "$("$bin" "${cfg[@]}" __complete instances 2>/dev/null)" -- "$cur"))
            return 0 ;;
        group)
            local inst=
            for (( i = 1; i < COMP_CWORD - 1; i++ )); do
                [[ ${COMP_WORDS[i]} == --instance ]] && inst=${COMP_WORDS[i+1]}
            done
            COMPREPLY=($(compgen -W "$("$bin" "${cfg[@]}" __complete groups $inst 2>/dev/null)" -- "$cur"))
            return 0 ;;
        region)
            COMPREPLY=($(compgen -W "$("$bin" __complete regions 2>/dev/null)" -- "$cur"))
            return 0 ;;
        ref)
            COMPREPLY=($(compgen -W "latest previous run:" -- "$cur"))
            [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == run: ]] &&
                compopt -o nospace 2>/dev/null
            return 0 ;;
        file)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0 ;;
        none)
            return 0 ;;
    esac

    if [[ $cur == -* || -n $cmd ]]; then
        COMPREPLY=($(compgen -W "$(_credsync_options "$text")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_credsync_commands "$bin")" -- "$cur"))
    fi
    return 0
}
complete -F _credsync credsync
