#pragma once

// Small text helpers shared by the modules that speak to hosts: ASCII case folding (protocols
// compare names case-insensitively; locales must not matter) and base64 (API keys are
// base64("KEY:SECRET")).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace flotilla {

std::string AsciiLower(std::string_view text);
std::string AsciiUpper(std::string_view text);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool ContainsIgnoreCase(std::string_view text, std::string_view what);
// `text` without leading and trailing ASCII whitespace.
std::string_view TrimAscii(std::string_view text);

// `address` as messages show it: never with anything before an '@' after "://", or before an
// '@' of an address without a scheme ("USER@HOST", as SSH writes it): a user name, or a careless
// password that holds '/' or '#'. A second line of defence: manifests with credentials in a URL
// are refused before any message names the address.
std::string AddressForMessages(std::string_view address);

// "500ms", "30s", "10m", "1h30m" -> milliseconds; nullopt for anything else (or overflow).
// The form of durations in flotilla.yaml and in provider settings.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);
// The other way: 90 s -> "1m30s", 1.5 s -> "1s500ms", 0 -> "0s"; ParseDuration reads it back.
std::string FormatDuration(std::chrono::milliseconds duration);

// "1 pool", "2 pools"; "1 VM set", "3 VM sets" (`plural` defaults to `singular` + "s").
std::string CountOf(size_t n, std::string_view singular, std::string_view plural = {});

// Percent-encodes one URL path segment or query value: RFC 3986's unreserved characters
// (letters, digits, "-._~") stay, every other byte becomes %XX.
std::string EncodePathSegment(std::string_view segment);

// Standard alphabet, padded.
std::string EncodeBase64(std::string_view bytes);

// `digits` (at most 16) lower-case hex digits of the FNV-1a hash of `text`: short, stable names
// (not for security).
std::string HexHash(std::string_view text, size_t digits);
// Standard or URL-safe alphabet, padding optional; nullopt on anything else.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace flotilla
