// Brand Studio on Azure Container Apps, serverless GPU workers that scale to zero, one managed
// identity for everything it can reach. The commands, in order: deploy/azure/README.md.
//
// Deployed twice: first with deployApps=false (the identity, registry, vault, databases, storage
// and the Container Apps environment), then, once the secrets are in the vault and the images in
// the registry, with deployApps=true (the web app, the beat app, the GPU workers and two jobs).

@description('Region. Serverless GPUs exist in a few regions only (README: "Region").')
param location string = resourceGroup().location

@description('Prefix of every resource name: 3 to 10 lower-case letters and digits.')
@minLength(3)
@maxLength(10)
param name string = 'studio'

@description('Deploy the apps and jobs too (second run), not only what they need (first run).')
param deployApps bool = false

@description('The serverless GPU the workers run on (the brief: a T4 is enough for inference).')
@allowed([
  'T4'
  'A100'
])
param gpu string = 'T4'

@description('The studio\'s host name, when it has one of its own (a CNAME to the web app); empty: the Container Apps name.')
param hostName string = ''

@description('Object id of the operator who deploys (az ad signed-in-user show --query id -o tsv): sets secrets, administers PostgreSQL.')
param operatorObjectId string

@description('User principal name of that operator (az ad signed-in-user show --query userPrincipalName -o tsv).')
param operatorPrincipalName string

@description('Once the host name is bound (README: "Your own host name"): the managed certificate\'s id, so that later deployments keep the binding.')
param hostCertificateId string = ''

@description('Tag of the images pushed to the registry (README: "Images").')
param imageTag string = 'latest'

@description('Sign-in with Microsoft Entra ID: the app registration\'s client id; empty: the studio\'s own passwords.')
param entraClientId string = ''

@description('The Entra group whose members are staff (the admin); empty: none.')
param entraStaffGroup string = ''

@description('Sign downloads with C2PA content credentials: the vault holds c2pa-cert and c2pa-key (README).')
param contentCredentials bool = false

@description('The model new jobs use; pull its weights first (README: "Weights, once").')
param defaultModel string = 'demo-brand'

@description('The model the pull-model job fetches into the weights share when started.')
param pullModel string = 'flux-schnell'

@description('GPU workers at most (the brief: 1 or 2 serve 100 people).')
@minValue(1)
@maxValue(10)
param workerMaxReplicas int = 1

@description('Seconds the GPU queue stays empty before the last worker goes (KEDA cooldown); each one is paid GPU time.')
@minValue(60)
param workerCooldownSeconds int = 300

@description('Seconds a GPU worker takes to start, shown to a job that waits for one (README: "Cold start"); 0: the card\'s estimate.')
@minValue(0)
param coldStartSeconds int = 0

@description('Web replicas kept running: 0 scales the web app to zero too (a first page then waits a few seconds).')
@minValue(0)
param webMinReplicas int = 0

var suffix = uniqueString(resourceGroup().id)
var cards = {
  T4: {
    profile: 'Consumption-GPU-NC8as-T4'
    cpu: 8
    memory: '56Gi'
    card: 't4'
    coldStart: 90
  }
  A100: {
    profile: 'Consumption-GPU-NC24-A100'
    cpu: 24
    memory: '220Gi'
    card: '80'
    coldStart: 75
  }
}
var card = cards[gpu]
var coldStart = coldStartSeconds > 0 ? coldStartSeconds : card.coldStart
var webName = '${name}-web'
var host = empty(hostName) ? '${webName}.${environment.properties.defaultDomain}' : hostName
var entra = !empty(entraClientId)
// A job may run this long; a worker told to stop (scale-in, a new revision) is given longer to finish it.
var jobTimeLimit = 540
var terminationGraceSeconds = 600

// Built-in role ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// ---------------------------------------------------------------- identity, logs, registry, vault

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-identity'
  location: location
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: 30
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139:private networking needs the Premium SKU (ten times Basic) and a virtual network; pulls and pushes are Entra-only (no admin user)
  // checkov:skip=CKV_AZURE_163:image scanning is Microsoft Defender for Containers, billed per image; enable it in Defender for Cloud where the subscription has it
  // checkov:skip=CKV_AZURE_166:quarantine needs the Premium SKU; the images are built from this repository by az acr build, nothing else pushes
  name: '${name}acr${suffix}'
  location: location
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false // pulls are the identity's (AcrPull), pushes the operator's (az acr build)
  }
}

resource identityPullsImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identity.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:no virtual network: Container Apps resolves Key Vault references over the public endpoint; RBAC only, the identity may read secrets, nobody lists them anonymously
  // checkov:skip=CKV_AZURE_189:same reason as CKV_AZURE_109
  name: take('${name}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true // no access policies: roles only
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled' // Container Apps resolves references over it (no virtual network here)
  }
}

resource identityReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorSetsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, operatorObjectId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: operatorObjectId
    principalType: 'User'
  }
}

// The one key that must exist: KEDA's Redis scaler has no Entra sign-in, so the workers' scale
// rule reads the cache's access key, from the vault.
resource redisKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'redis-access-key'
  properties: {
    value: redis.listKeys().primaryKey
    contentType: 'Azure Cache for Redis access key, read by the workers\' KEDA scale rule only'
    attributes: {
      exp: 1893456000 // 2030-01-01: rotate with `az redis regenerate-key` and a new deployment before then
    }
  }
}

// ---------------------------------------------------------------- storage

// Images: a private container, reached by the identity only (shared keys are off on this account).
resource blobs 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:no virtual network, so no fixed address to allow; shared keys are off and anonymous access too, every request carries an Entra token
  // checkov:skip=CKV_AZURE_59:same reason as CKV_AZURE_35 (the container is private: publicAccess None)
  // checkov:skip=CKV_AZURE_43:a false positive: checkov cannot evaluate the name's interpolation; take() keeps it within 3-24 lower-case letters and digits
  name: take('${name}img${suffix}', 24)
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_GRS' // the studio's output: a copy in the paired region
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // no account key in production: Entra ID only
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: blobs
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource imagesContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'brandstudio'
  properties: {
    publicAccess: 'None'
  }
}

resource identityWritesBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(blobs.id, identity.id, roles.blobDataContributor)
  scope: blobs
  properties: {
    // Read and write blobs, and ask for the user delegation key that signs download URLs.
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Weights (read-only to the workers) and the files the processes share (LoRAs, compiled kernels,
// palette tables): Azure Files, mounted over SMB, which Container Apps does with the account key.
resource files 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Container Apps on the Consumption plan mounts the shares from no fixed address (no virtual network)
  // checkov:skip=CKV_AZURE_59:same reason as CKV_AZURE_35; no blob container on this account, the shares are reached with the key the environment holds
  // checkov:skip=CKV_AZURE_43:a false positive: checkov cannot evaluate the name's interpolation; take() keeps it within 3-24 lower-case letters and digits
  // checkov:skip=CKV_AZURE_206:large file shares take LRS or ZRS only; ZRS it is. The weights are fetched again by the pull-model job; back up the data share (LoRAs) with Azure Backup where they matter
  name: take('${name}files${suffix}', 24)
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true // Container Apps mounts Azure Files with the account key
    largeFileSharesState: 'Enabled' // larger shares, faster reads of the weights
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2023-05-01' = {
  parent: files
  name: 'default'
  properties: {
    shareDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource weightsShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: fileService
  name: 'weights'
  properties: {
    accessTier: 'Hot'
    shareQuota: 256
  }
}

resource dataShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2023-05-01' = {
  parent: fileService
  name: 'data'
  properties: {
    accessTier: 'Hot'
    shareQuota: 32
  }
}

// ---------------------------------------------------------------- PostgreSQL and Redis

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: '${name}-pg-${suffix}'
  location: location
  sku: {
    name: 'Standard_B1ms'
    tier: 'Burstable'
  }
  properties: {
    version: '16'
    storage: {
      storageSizeGB: 32
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled' // Entra ID only: there is no password to leak
      tenantId: tenant().tenantId
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: 'studio'
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// Container Apps on the Consumption plan have no fixed outbound address: allow Azure's, sign in with Entra.
resource postgresFromAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: postgres
  name: 'AllowAzureServices'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

// The studio's identity administers its database (it runs the migrations); the operator too, for
// psql. One after the other: the server refuses two administrator changes at once.
module postgresIdentityAdmin 'postgres-admin.bicep' = {
  name: 'postgres-admin-identity'
  params: {
    serverName: postgres.name
    principalId: identity.properties.principalId
    principalName: identity.name
    principalType: 'ServicePrincipal'
  }
  dependsOn: [
    database
    postgresFromAzure
  ]
}

module postgresOperatorAdmin 'postgres-admin.bicep' = {
  name: 'postgres-admin-operator'
  params: {
    serverName: postgres.name
    principalId: operatorObjectId
    principalName: operatorPrincipalName
    principalType: 'User'
  }
  dependsOn: [
    postgresIdentityAdmin
  ]
}

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  // checkov:skip=CKV_AZURE_89:a private endpoint needs a virtual network the Consumption apps would join; TLS only, Entra sign-in for the studio, the key only in the vault for KEDA
  name: '${name}-redis-${suffix}'
  location: location
  properties: {
    sku: {
      name: 'Basic'
      family: 'C'
      capacity: 0
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisConfiguration: {
      'aad-enabled': 'true' // Entra ID sign-in for the studio (brandstudio/azure/)
      'maxmemory-policy': 'noeviction' // a queue must never be evicted
    }
    disableAccessKeyAuthentication: false // KEDA's scaler still signs in with the key
  }
}

resource redisIdentityAccess 'Microsoft.Cache/redis/accessPolicyAssignments@2024-03-01' = {
  parent: redis
  name: 'studio-identity'
  properties: {
    accessPolicyName: 'Data Owner'
    objectId: identity.properties.principalId
    objectIdAlias: identity.name
  }
}

// ---------------------------------------------------------------- the Container Apps environment

resource environment 'Microsoft.App/managedEnvironments@2024-10-02-preview' = {
  name: '${name}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
      {
        name: 'gpu'
        workloadProfileType: card.profile
      }
    ]
  }
}

resource weightsReadOnly 'Microsoft.App/managedEnvironments/storages@2024-10-02-preview' = {
  parent: environment
  name: 'weights-ro'
  properties: {
    azureFile: {
      accountName: files.name
      accountKey: files.listKeys().keys[0].value
      shareName: weightsShare.name
      accessMode: 'ReadOnly' // workers read weights, never fetch them
    }
  }
}

resource weightsWritable 'Microsoft.App/managedEnvironments/storages@2024-10-02-preview' = {
  parent: environment
  name: 'weights-rw'
  properties: {
    azureFile: {
      accountName: files.name
      accountKey: files.listKeys().keys[0].value
      shareName: weightsShare.name
      accessMode: 'ReadWrite' // the pull-model job only
    }
  }
}

resource dataStorage 'Microsoft.App/managedEnvironments/storages@2024-10-02-preview' = {
  parent: environment
  name: 'data'
  properties: {
    azureFile: {
      accountName: files.name
      accountKey: files.listKeys().keys[0].value
      shareName: dataShare.name
      accessMode: 'ReadWrite'
    }
  }
}

// ---------------------------------------------------------------- apps and jobs (second run)

var vaultSecret = '${vault.properties.vaultUri}secrets/'
var keySecret = [
  { name: 'django-secret-key', keyVaultUrl: '${vaultSecret}django-secret-key', identity: identity.id }
]
var entraSecret = [
  { name: 'entra-client-secret', keyVaultUrl: '${vaultSecret}entra-client-secret', identity: identity.id }
]
var c2paSecrets = [
  { name: 'c2pa-cert', keyVaultUrl: '${vaultSecret}c2pa-cert', identity: identity.id }
  { name: 'c2pa-key', keyVaultUrl: '${vaultSecret}c2pa-key', identity: identity.id }
]
var secrets = concat(keySecret, entra ? entraSecret : [], contentCredentials ? c2paSecrets : [])
var redisKeyRef = [
  { name: 'redis-access-key', keyVaultUrl: '${vaultSecret}${redisKeySecret.name}', identity: identity.id }
]

var redisUrl = 'rediss://${redis.properties.hostName}:${redis.properties.sslPort}/0?ssl_cert_reqs=required&credential_provider=brandstudio.azure.RedisCredentials'
var commonEnv = [
  { name: 'SECRET_KEY', secretRef: 'django-secret-key' }
  { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
  // PostgreSQL as the identity, a token for the password (brandstudio/azure/postgres).
  {
    name: 'DATABASE_URL'
    value: 'postgres://${identity.name}@${postgres.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
  }
  { name: 'DATABASE_ENTRA_AUTH', value: '1' }
  // Redis as the identity (its object id the user name), a token for the password.
  { name: 'CELERY_BROKER_URL', value: redisUrl }
  { name: 'REDIS_ENTRA_OBJECT_ID', value: identity.properties.principalId }
  // Blob as the identity: no key, user delegation SAS for downloads.
  { name: 'AZURE_ACCOUNT_NAME', value: blobs.name }
  { name: 'AZURE_CONTAINER', value: imagesContainer.name }
  // The app's real host name: allowed hosts, CSRF, HSTS and Secure cookies behind Container Apps' TLS.
  { name: 'ALLOWED_HOSTS', value: host }
  { name: 'CSRF_TRUSTED_ORIGINS', value: 'https://${host}' }
  { name: 'STUDIO_PUBLIC_URL', value: 'https://${host}' }
  { name: 'BEHIND_TLS_PROXY', value: '1' }
  { name: 'SECURE_COOKIES', value: '1' }
  { name: 'SECURE_HSTS_PRELOAD', value: '0' } // preloading is a decision for the domain's owner
  // Workers scale on the shared queues' length (KEDA), so every job goes to `gpu`, none to a
  // worker's own queue, which the scaler cannot see (README: "How the workers scale").
  { name: 'STUDIO_ROUTING', value: '0' }
  { name: 'STUDIO_COLD_START_SECONDS', value: string(coldStart) }
  // A training worker's marker while it trains, which the `keepalive` scale rule watches.
  { name: 'STUDIO_KEEPALIVE_LIST', value: keepaliveList }
  { name: 'STUDIO_WORKER_CARDS', value: card.card }
  { name: 'STUDIO_DEFAULT_MODEL', value: defaultModel }
  { name: 'STUDIO_JOB_TIME_LIMIT', value: string(jobTimeLimit) }
  { name: 'HF_HOME', value: '/models/huggingface' }
  { name: 'STUDIO_MODELS_DIR', value: '/models/studio' }
  { name: 'STUDIO_LORA_ROOT', value: '/data/loras' }
  { name: 'STUDIO_COMPILE_CACHE_DIR', value: '/data/compile-cache' }
  { name: 'STUDIO_PALETTE_TABLES_DIR', value: '/data/palette-tables' }
  { name: 'LOG_FORMAT', value: 'json' }
]
// Redirect URI to register in the app registration: the entraRedirectUri output.
var entraEnv = [
  { name: 'ENTRA_CLIENT_ID', value: entraClientId }
  { name: 'ENTRA_TENANT_ID', value: tenant().tenantId }
  { name: 'ENTRA_CLIENT_SECRET', secretRef: 'entra-client-secret' }
  { name: 'ENTRA_STAFF_GROUP', value: entraStaffGroup }
]
var c2paEnv = [
  { name: 'STUDIO_C2PA_CERT_FILE', value: '/run/secrets/c2pa-cert.pem' }
  { name: 'STUDIO_C2PA_KEY_FILE', value: '/run/secrets/c2pa-key.pem' }
]
var env = concat(commonEnv, entra ? entraEnv : [], contentCredentials ? c2paEnv : [])
var workerEnv = concat(env, [{ name: 'HF_HUB_OFFLINE', value: '1' }])
var beatEnv = concat(env, [{ name: 'STUDIO_PRELOAD_ENGINE', value: '0' }])
var pullEnv = concat(env, [{ name: 'STUDIO_PULL_MODEL', value: pullModel }, { name: 'HF_HUB_OFFLINE', value: '0' }])

var c2paVolume = [
  {
    name: 'secrets'
    storageType: 'Secret'
    secrets: [
      { secretRef: 'c2pa-cert', path: 'c2pa-cert.pem' }
      { secretRef: 'c2pa-key', path: 'c2pa-key.pem' }
    ]
  }
]
var secretVolumes = contentCredentials ? c2paVolume : []
var secretMounts = contentCredentials ? [{ volumeName: 'secrets', mountPath: '/run/secrets' }] : []
var dataVolume = { name: 'data', storageType: 'AzureFile', storageName: dataStorage.name }
var dataMount = { volumeName: 'data', mountPath: '/data' }
var weightsMount = { volumeName: 'weights', mountPath: '/models' }
var appVolumes = concat([dataVolume], secretVolumes)
var appMounts = concat([dataMount], secretMounts)
var workerVolumes = concat([{ name: 'weights', storageType: 'AzureFile', storageName: weightsReadOnly.name }, dataVolume], secretVolumes)
var workerMounts = concat([weightsMount, dataMount], secretMounts)
var registries = [
  {
    server: registry.properties.loginServer
    identity: identity.id
  }
]
var webImage = '${registry.properties.loginServer}/brandstudio-web:${imageTag}'
var workerImage = '${registry.properties.loginServer}/brandstudio-worker:${imageTag}'
var identityRef = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${identity.id}': {}
  }
}
// Health checks ask for the real host over what Django takes for HTTPS, as the front end does.
var probeHeaders = [
  { name: 'Host', value: host }
  { name: 'X-Forwarded-Proto', value: 'https' }
]

resource web 'Microsoft.App/containerApps@2024-10-02-preview' = if (deployApps) {
  name: webName
  location: location
  identity: identityRef
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
      registries: registries
      ingress: {
        external: true
        targetPort: 8000
        transport: 'auto'
        allowInsecure: false
        customDomains: empty(hostName) || empty(hostCertificateId) ? [] : [{ name: hostName, certificateId: hostCertificateId, bindingType: 'SniEnabled' }]
      }
    }
    template: {
      containers: [
        {
          name: 'web'
          image: webImage
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: env
          volumeMounts: appMounts
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/health/', port: 8000, httpHeaders: probeHeaders }
              periodSeconds: 5
              failureThreshold: 24
            }
            {
              type: 'Liveness'
              httpGet: { path: '/health/', port: 8000, httpHeaders: probeHeaders }
              periodSeconds: 30
              failureThreshold: 3
            }
          ]
        }
      ]
      volumes: appVolumes
      scale: {
        minReplicas: webMinReplicas
        maxReplicas: 2
        rules: [
          {
            name: 'http'
            http: {
              metadata: {
                concurrentRequests: '30'
              }
            }
          }
        ]
      }
    }
  }
  dependsOn: [
    identityPullsImages
    identityReadsSecrets
  ]
}

// Beat and the maintenance queue in one process (`worker -B`), exactly one replica: never two
// schedulers, and the reaper keeps running while every GPU worker is gone.
resource beat 'Microsoft.App/containerApps@2024-10-02-preview' = if (deployApps) {
  name: '${name}-beat'
  location: location
  identity: identityRef
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'beat'
          image: webImage
          command: [
            'celery'
          ]
          args: [
            '-A'
            'brandstudio'
            'worker'
            '--beat'
            '--schedule'
            '/tmp/celerybeat-schedule'
            '-Q'
            'maintenance'
            '--pool'
            'solo'
            '-n'
            'maintenance@%h'
            '--loglevel'
            'INFO'
          ]
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: beatEnv
          volumeMounts: appMounts
        }
      ]
      volumes: appVolumes
      scale: {
        minReplicas: 1
        maxReplicas: 1 // one beat, whatever happens
      }
    }
  }
  dependsOn: [
    identityPullsImages
    identityReadsSecrets
  ]
}

// KEDA's Redis list scaler, one rule per queue the workers take (CELERY_TASK_ROUTES): jobs,
// "Retry finishing" and depth previews on `gpu`, LoRA runs and captions on `training`. One waiting
// message starts a worker; each further one another, up to workerMaxReplicas. A third rule keeps
// a worker up while it trains: a taken run leaves `training` empty, and runs last hours
// (generation/training/keepalive.py).
var keepaliveList = 'training-busy'
var redisAddress = '${redis.properties.hostName}:${redis.properties.sslPort}'
var redisKeyAuth = [
  { secretRef: 'redis-access-key', triggerParameter: 'password' }
]
var queueRules = [
  {
    name: 'gpu-queue'
    custom: {
      type: 'redis'
      metadata: { address: redisAddress, enableTLS: 'true', databaseIndex: '0', listName: 'gpu', listLength: '1' }
      auth: redisKeyAuth
    }
  }
  {
    name: 'training-queue'
    custom: {
      type: 'redis'
      metadata: { address: redisAddress, enableTLS: 'true', databaseIndex: '0', listName: 'training', listLength: '1' }
      auth: redisKeyAuth
    }
  }
  {
    name: 'training-keepalive'
    custom: {
      type: 'redis'
      metadata: { address: redisAddress, enableTLS: 'true', databaseIndex: '0', listName: keepaliveList, listLength: '1' }
      auth: redisKeyAuth
    }
  }
]

resource worker 'Microsoft.App/containerApps@2024-10-02-preview' = if (deployApps) {
  name: '${name}-worker'
  location: location
  identity: identityRef
  properties: {
    environmentId: environment.id
    workloadProfileName: 'gpu'
    configuration: {
      activeRevisionsMode: 'Single'
      secrets: concat(secrets, redisKeyRef)
      registries: registries
    }
    template: {
      terminationGracePeriodSeconds: terminationGraceSeconds
      containers: [
        {
          name: 'worker'
          image: workerImage
          command: [
            'celery'
          ]
          args: [
            '-A'
            'brandstudio'
            'worker'
            '-Q'
            'gpu,training'
            '--concurrency'
            '1'
            '--pool'
            'prefork'
            '-n'
            'gpu@%h'
            '--loglevel'
            'INFO'
          ]
          resources: {
            cpu: card.cpu
            memory: card.memory
          }
          env: workerEnv
          volumeMounts: workerMounts
        }
      ]
      volumes: workerVolumes
      scale: {
        minReplicas: 0
        maxReplicas: workerMaxReplicas
        cooldownPeriod: workerCooldownSeconds
        pollingInterval: 10
        rules: queueRules
      }
    }
  }
  dependsOn: [
    identityPullsImages
    identityReadsSecrets
  ]
}

// Run once after each release: migrations, the private container, the demo model.
resource migrate 'Microsoft.App/jobs@2024-10-02-preview' = if (deployApps) {
  name: '${name}-migrate'
  location: location
  identity: identityRef
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 1800
      replicaRetryLimit: 1
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'migrate'
          image: webImage
          command: [
            'sh'
            '-c'
            'python manage.py migrate --noinput && python manage.py create_container && python manage.py build_default_model'
          ]
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: env
          volumeMounts: [
            { volumeName: 'weights', mountPath: '/models' }
            { volumeName: 'data', mountPath: '/data' }
          ]
        }
      ]
      volumes: [
        { name: 'weights', storageType: 'AzureFile', storageName: weightsWritable.name }
        dataVolume
      ]
    }
  }
  dependsOn: [
    identityPullsImages
    identityReadsSecrets
    postgresIdentityAdmin
    redisIdentityAccess
    identityWritesBlobs
  ]
}

// Weights, once: `az containerapp job start` fetches STUDIO_PULL_MODEL into the weights share,
// on a CPU (no GPU is paid for a download); the workers only ever read the share.
resource pullModelJob 'Microsoft.App/jobs@2024-10-02-preview' = if (deployApps) {
  name: '${name}-pull-model'
  location: location
  identity: identityRef
  properties: {
    environmentId: environment.id
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: 'Manual'
      replicaTimeout: 14400
      replicaRetryLimit: 0
      manualTriggerConfig: {
        parallelism: 1
        replicaCompletionCount: 1
      }
      secrets: secrets
      registries: registries
    }
    template: {
      containers: [
        {
          name: 'pull-model'
          image: workerImage
          command: [
            'sh'
            '-c'
            'python manage.py pull_model "$STUDIO_PULL_MODEL"'
          ]
          resources: {
            cpu: 2
            memory: '4Gi'
          }
          env: pullEnv
          volumeMounts: [
            { volumeName: 'weights', mountPath: '/models' }
          ]
        }
      ]
      volumes: [
        { name: 'weights', storageType: 'AzureFile', storageName: weightsWritable.name }
      ]
    }
  }
  dependsOn: [
    identityPullsImages
    identityReadsSecrets
    postgresIdentityAdmin
  ]
}

output registry string = registry.properties.loginServer
output vault string = vault.name
output host string = host
output url string = 'https://${host}'
output entraRedirectUri string = 'https://${host}/oauth/complete/azuread-v2-tenant-oauth2/'
output identityClientId string = identity.properties.clientId
output postgresHost string = postgres.properties.fullyQualifiedDomainName
output coldStartSeconds int = coldStart
