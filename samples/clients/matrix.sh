#!/bin/sh
# The seed's client examples with curl, against an ivrgate server.
#
#   MATRIX_URL=http://127.0.0.1:8080 MATRIX_USERNAME=user@hotmail.com MATRIX_PASSWORD=pass72727 \
#       sh samples/clients/matrix.sh tts
#
# Examples: sms group status tts rate php post carrier balance voice voiceurl vtts
# Settings (environment): MATRIX_URL, MATRIX_USERNAME, MATRIX_PASSWORD, MATRIX_PHONE (comma list),
# MATRIX_CALLERID, MATRIX_GROUP, MATRIX_ID (for status), MATRIX_TXT, MATRIX_VOICEFILE, MATRIX_VOICEURL.
# curl --fail exits 22 on an HTTP error (the seed's `die "HTTP Error"`); the answer's STATUSCODE says
# whether the gateway accepted the request (0-399).
set -eu

URL=${MATRIX_URL:-http://127.0.0.1:8080}
USERNAME=${MATRIX_USERNAME:-user@hotmail.com}
PASSWORD=${MATRIX_PASSWORD:-pass72727}
PHONE=${MATRIX_PHONE:-12506063167}
CALLERID=${MATRIX_CALLERID:-12501231233}
GROUP=${MATRIX_GROUP:-Test_Group}
ID=${MATRIX_ID:-}
TXT=${MATRIX_TXT:-This is a test, pls ignore}
HERE=$(dirname "$0")
VOICEFILE=${MATRIX_VOICEFILE:-$HERE/../prompts/short.wav}
VOICEURL=${MATRIX_VOICEURL:-http://www.myweb.de/s/welcome.mp3}

post() {  # post ROUTE curl-args...: an application/x-www-form-urlencoded POST
    route=$1
    shift
    curl --silent --show-error --fail "$@" "$URL/$route"
}

json_escape() {
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

case "${1:-}" in
sms)      # Send SMS (tts=1: fixed lines get a TTS call instead)
    post matrix --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "callerid=$CALLERID" --data-urlencode "phone=$PHONE" -d tts=1 \
        --data-urlencode "txt=$TXT" ;;
group)    # Send SMS to a group
    post matrix --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "callerid=$CALLERID" --data-urlencode "group=$GROUP" --data-urlencode "txt=$TXT" ;;
status)   # Check message status
    post matrix_status --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "id=$ID" ;;
tts)      # Send a text-to-speech message
    post matrix_tts --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "phone=$PHONE" -d repeat=1 -d gender=male -d language=us -d response=0 \
        --data-urlencode "txt=Adam, web server is down" ;;
rate)     # Query message rate (no account needed)
    post sms_rate --data-urlencode "phone=$PHONE" ;;
php)      # The PHP sample: everything in a GET query string
    curl --silent --show-error --fail --get --data-urlencode "username=$USERNAME" \
        --data-urlencode "password=$PASSWORD" --data-urlencode "phone=$PHONE" --data-urlencode "txt=$TXT" \
        "$URL/matrix" ;;
post)     # The Java and C# samples: a hand-built form body
    post matrix -H 'Content-Type: application/x-www-form-urlencoded' --data-urlencode "username=$USERNAME" \
        --data-urlencode "password=$PASSWORD" -d "phone=$PHONE" --data-urlencode "txt=$TXT" ;;
carrier)  # Carrier lookup
    post carrier --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "phone=$PHONE" ;;
balance)  # Account balance
    post balance --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" ;;
voice)    # Voice message with an uploaded file (multipart/form-data)
    post matrix_voice -F "username=$USERNAME" -F "password=$PASSWORD" -F "phone=$PHONE" \
        -F "voicefile=@$VOICEFILE" -F response=1 -F "callerid=$CALLERID" ;;
voiceurl) # Voice message by URL (fetched once, at submission)
    post matrix_voicew --data-urlencode "username=$USERNAME" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "phone=$PHONE" --data-urlencode "voiceurl=$VOICEURL" -d response=0 \
        --data-urlencode "callerid=$CALLERID" ;;
vtts)     # Voice plus TTS in one call (JSON body)
    body=$(printf '{"username": "%s", "password": "%s", "phone": "%s", "language": "us", "gender": "male", "callerid": "%s", "response": 0, "msg": ["%s", "This text will be converted to voice by TTS engine."]}' \
        "$(json_escape "$USERNAME")" "$(json_escape "$PASSWORD")" "$(json_escape "$PHONE")" \
        "$(json_escape "$CALLERID")" "$(json_escape "$VOICEURL")")
    post matrix_vtts -H 'Content-Type: application/json' --data-binary "$body" ;;
*)
    echo "usage: $0 sms|group|status|tts|rate|php|post|carrier|balance|voice|voiceurl|vtts" >&2
    exit 64 ;;
esac
echo
