# patchwave agent: Windows Update through the Windows Update Agent COM API.
# The agent prepends two lines: $Action ('inventory', 'install' or 'installed') and $KbIds
# (an array of 'KB1234567' strings). Every action prints one JSON object on stdout; errors
# go to stderr with exit code 1. Runs on Windows PowerShell 5.1 and PowerShell 7.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8

function Get-KbIds($update) {
    @($update.KBArticleIDs | ForEach-Object { 'KB' + $_ })
}

function Get-OsFacts {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    [ordered]@{
        caption      = $os.Caption
        version      = $os.Version
        architecture = $env:PROCESSOR_ARCHITECTURE
        hostname     = $os.CSName
    }
}

function Format-Time($value) {
    if ($null -eq $value) { return $null }
    ([DateTime]$value).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
}

function Search-Updates($criteria) {
    $session = New-Object -ComObject Microsoft.Update.Session
    $searcher = $session.CreateUpdateSearcher()
    $result = $searcher.Search($criteria)
    @{ Session = $session; Updates = $result.Updates }
}

function Write-Json($object) {
    # -Compress: one line; -Depth: nested arrays would otherwise turn into type names.
    $object | ConvertTo-Json -Depth 6 -Compress
}

switch ($Action) {
    'inventory' {
        $found = Search-Updates 'IsInstalled=0 and IsHidden=0'
        $updates = foreach ($u in $found.Updates) {
            [ordered]@{
                updateId                 = $u.Identity.UpdateID
                kbIds                    = @(Get-KbIds $u)
                title                    = $u.Title
                msrcSeverity             = $u.MsrcSeverity
                categories               = @($u.Categories | ForEach-Object {
                        [ordered]@{ id = $_.CategoryID; name = $_.Name; type = $_.Type } })
                cveIds                   = @($u.CveIDs | ForEach-Object { [string]$_ })
                rebootRequired           = ($u.InstallationBehavior.RebootBehavior -ne 0)
                lastDeploymentChangeTime = Format-Time $u.LastDeploymentChangeTime
            }
        }
        Write-Json ([ordered]@{
                os             = Get-OsFacts
                rebootRequired = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
                updates        = @($updates)
            })
    }
    'install' {
        $found = Search-Updates 'IsInstalled=0 and IsHidden=0'
        $collection = New-Object -ComObject Microsoft.Update.UpdateColl
        $matched = @()
        foreach ($u in $found.Updates) {
            $kbs = Get-KbIds $u
            if (@($kbs | Where-Object { $KbIds -contains $_ }).Count -gt 0) {
                if (-not $u.EulaAccepted) { $u.AcceptEula() }
                [void]$collection.Add($u)
                $matched += $kbs
            }
        }
        $missing = @($KbIds | Where-Object { $matched -notcontains $_ })
        if ($missing.Count -gt 0) {
            # Nothing is installed when one of the asked updates is not offered.
            Write-Json ([ordered]@{ missing = $missing; results = @(); rebootRequired = $false })
            break
        }
        $downloader = $found.Session.CreateUpdateDownloader()
        $downloader.Updates = $collection
        [void]$downloader.Download()
        $installer = $found.Session.CreateUpdateInstaller()
        $installer.Updates = $collection
        $result = $installer.Install()
        $results = for ($i = 0; $i -lt $collection.Count; $i++) {
            $one = $result.GetUpdateResult($i)
            [ordered]@{
                kbIds      = @(Get-KbIds $collection.Item($i))
                title      = $collection.Item($i).Title
                resultCode = [int]$one.ResultCode
                hResult    = [int]$one.HResult
            }
        }
        Write-Json ([ordered]@{
                missing        = @()
                results        = @($results)
                resultCode     = [int]$result.ResultCode
                rebootRequired = [bool]$result.RebootRequired
            })
    }
    'installed' {
        $kbs = @(Get-HotFix | ForEach-Object { $_.HotFixID })
        $found = Search-Updates 'IsInstalled=1'
        foreach ($u in $found.Updates) { $kbs += Get-KbIds $u }
        Write-Json ([ordered]@{ installed = @($kbs | Sort-Object -Unique) })
    }
    default {
        [Console]::Error.WriteLine("unknown action '$Action'")
        exit 2
    }
}
