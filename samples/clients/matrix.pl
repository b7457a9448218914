#!/usr/bin/perl
# The seed's Perl examples (LWP::UserAgent, HTTP::Request::Common, JSON), against an ivrgate server.
#
#   MATRIX_URL=http://127.0.0.1:8080 MATRIX_USERNAME=user@hotmail.com MATRIX_PASSWORD=pass72727 \
#       perl samples/clients/matrix.pl tts
#
# Examples: sms group status tts rate carrier balance voice voiceurl vtts
# Debian packages: libwww-perl, libjson-perl.
use strict;
use warnings;
use LWP::UserAgent;
use HTTP::Request::Common;
use JSON();
use File::Basename qw(dirname);

my $URL      = $ENV{MATRIX_URL}      // 'http://127.0.0.1:8080';
my $USERNAME = $ENV{MATRIX_USERNAME} // 'user@hotmail.com';
my $PASSWORD = $ENV{MATRIX_PASSWORD} // 'pass72727';
my $PHONE    = $ENV{MATRIX_PHONE}    // '12506063167';
my $CALLERID = $ENV{MATRIX_CALLERID} // '12501231233';
my $GROUP    = $ENV{MATRIX_GROUP}    // 'Test_Group';
my $MSGID    = $ENV{MATRIX_ID}       // '';
my $TXT      = $ENV{MATRIX_TXT}      // 'This is a test, pls ignore';
my $VOICEFILE = $ENV{MATRIX_VOICEFILE} // dirname(__FILE__) . '/../prompts/short.wav';
my $VOICEURL = $ENV{MATRIX_VOICEURL} // 'http://www.myweb.de/s/welcome.mp3';

my $ua = LWP::UserAgent->new();
my $example = shift @ARGV // '';
my $res;

if ($example eq 'sms') {
    $res = $ua->request(POST "$URL/matrix",
        Content_Type => 'application/x-www-form-urlencoded',
        Content => [ username => $USERNAME, password => $PASSWORD, callerid => $CALLERID,
                     phone => $PHONE, tts => 1, txt => $TXT ]);
} elsif ($example eq 'group') {
    $res = $ua->request(POST "$URL/matrix",
        Content_Type => 'application/x-www-form-urlencoded',
        Content => [ username => $USERNAME, password => $PASSWORD, callerid => $CALLERID,
                     group => $GROUP, txt => $TXT ]);
} elsif ($example eq 'status') {
    # the seed builds this body by hand; the values are escaped here so any password works
    my $req = HTTP::Request->new('POST', "$URL/matrix_status");
    $req->content_type('application/x-www-form-urlencoded');
    my $form = POST('http://x/', [ username => $USERNAME, password => $PASSWORD, id => $MSGID ]);
    $req->content($form->content);
    $res = $ua->request($req);
} elsif ($example eq 'tts') {
    $res = $ua->request(POST "$URL/matrix_tts",
        Content_Type => 'application/x-www-form-urlencoded',
        Content => [ username => $USERNAME, password => $PASSWORD, phone => $PHONE, repeat => 1,
                     gender => 'male', language => 'us', response => 0, txt => 'Adam, web server is down' ]);
} elsif ($example eq 'rate') {
    $res = $ua->request(POST "$URL/sms_rate",
        Content_Type => 'application/x-www-form-urlencoded', Content => [ phone => $PHONE ]);
} elsif ($example eq 'carrier') {
    $res = $ua->request(POST "$URL/carrier",
        Content_Type => 'application/x-www-form-urlencoded',
        Content => [ username => $USERNAME, password => $PASSWORD, phone => $PHONE ]);
} elsif ($example eq 'balance') {
    $res = $ua->request(POST "$URL/balance",
        Content_Type => 'application/x-www-form-urlencoded',
        Content => [ username => $USERNAME, password => $PASSWORD ]);
} elsif ($example eq 'voice') {
    $res = $ua->request(POST "$URL/matrix_voice",
        Content_Type => 'form-data',
        Content => [ username => $USERNAME, password => $PASSWORD, phone => $PHONE,
                     voicefile => [$VOICEFILE], response => 1, callerid => $CALLERID ]);
} elsif ($example eq 'voiceurl') {
    $res = $ua->request(POST "$URL/matrix_voicew",
        Content => [ username => $USERNAME, password => $PASSWORD, phone => $PHONE,
                     voiceurl => $VOICEURL, response => 0, callerid => $CALLERID ]);
} elsif ($example eq 'vtts') {
    my $msg = { username => $USERNAME, password => $PASSWORD, phone => $PHONE, language => 'us',
                gender => 'male', callerid => $CALLERID, response => 0,
                msg => [ $VOICEURL, 'This text will be converted to voice by TTS engine.' ] };
    $res = $ua->request(POST "$URL/matrix_vtts",
        Content_Type => 'application/json', Content => JSON::to_json($msg));
} else {
    die "usage: $0 sms|group|status|tts|rate|carrier|balance|voice|voiceurl|vtts\n";
}

if ($res->is_error) { die "HTTP Error\n"; }
print "Matrix API Response: " . $res->content . "\n\n";
